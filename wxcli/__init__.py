"""wxcli — watch a company's WeChat customer-service groups over the Web WeChat protocol.

Importing the package has no side effects and pulls in nothing heavy; the pieces live in
submodules (``wxcli.client``, ``wxcli.simulator``, ``wxcli.store`` ...).
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
