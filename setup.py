"""Packaging metadata for wxcli — the single source of it (pyproject.toml only configures tools)."""

import re
from pathlib import Path

from setuptools import find_packages, setup

HERE = Path(__file__).parent


def read_version() -> str:
    """Read __version__ from wxcli/__init__.py without importing the package."""
    text = (HERE / "wxcli" / "__init__.py").read_text(encoding="utf-8")
    match = re.search(r'^__version__ = "([^"]+)"', text, re.M)
    if not match:
        raise RuntimeError("__version__ not found in wxcli/__init__.py")
    return match.group(1)


setup(
    name="wxcli",
    version=read_version(),
    description="Watch a company's WeChat customer-service groups over the Web WeChat protocol",
    long_description=(HERE / "README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    license="MIT",
    python_requires=">=3.11",
    packages=find_packages(include=["wxcli", "wxcli.*"]),
    include_package_data=True,
    package_data={
        "wxcli": ["py.typed"],
        "wxcli.simulator": ["assets/*", "scenarios/*.toml"],
        "wxcli.analysis": ["data/*.txt"],
        "wxcli.stats": ["templates/*"],
    },
    install_requires=[
        "click>=8.1",
        "rich>=13.0",
        "requests>=2.31",
        "qrcode>=7.4",
        "peewee>=3.17",
        "PyMySQL>=1.1",
        "oss2>=2.18",
        "snownlp>=0.12.3",
        "jieba>=0.42.1",
        "schedule>=1.2",
        # comment-preserving edits of wxcli.toml for `wxcli alert add-*` (tomllib can only read)
        "tomlkit>=0.12",
        # production WSGI server for `wxcli serve`: request limits and timeouts, not hand-rolled
        "waitress>=3.0",
        # parses the untrusted XML inside messages: refuses DTDs, entities, external references
        "defusedxml>=0.7",
        # the feed's Redis Streams sink (XADD with MAXLEN; consumers use consumer groups)
        "redis>=5.0",
        # the HTML report's templates: autoescaped, so names and messages never become markup
        "jinja2>=3.1",
    ],
    extras_require={
        "dev": [
            "pytest>=8.0",
            "pytest-timeout>=2.3",
            "pytest-xdist>=3.5",
            "ruff>=0.6",
            "aiosmtpd>=1.4",
            "hypothesis>=6.100",
            "Pillow>=10.0",
            "cryptography>=41",  # self-signed TLS certs for the SMTP/webhook test servers
            "openapi-spec-validator>=0.7",  # checks /openapi.json of `wxcli serve`
            # an independent case generator over the same document: no route may answer 5xx
            "schemathesis>=4.0",
            # the type checker `pytest` runs (tests/test_types.py), and stubs for what it checks
            "mypy>=2.4",
            "types-requests",
            "types-defusedxml",
            "types-PyMySQL",
            "types-qrcode",
            "types-waitress",
        ],
    },
    entry_points={"console_scripts": ["wxcli = wxcli.cli:main"]},
    classifiers=[
        "Programming Language :: Python :: 3",
        "Programming Language :: Python :: 3.11",
        "Environment :: Console",
        "Topic :: Communications :: Chat",
    ],
)
