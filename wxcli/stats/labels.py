"""The words of the ``wxcli stats`` reports: one table per language, shared by both renderers.

The terminal (:mod:`wxcli.stats.terminal`) and the HTML page (:mod:`wxcli.stats.html`) used to
keep a table each, so a wording fixed in one stayed wrong in the other. Where the terminal says
something in its own shape (a panel title that names its axes, a column header, a count's unit,
an inline "no data") it has its own key here, and ``terminal.TEXT`` maps its short names onto
them. Labels with ``{n}``-style fields are formatted by the renderer; user data never goes
through ``str.format``.
"""

from __future__ import annotations

ZH: dict[str, str] = {
    "lang": "zh-CN",
    "period": "统计区间",
    "timezone": "时区",
    "account": "账号",
    "generated": "生成于",
    "chats": "覆盖群聊",
    "chats_unit": "群聊",
    "more_chats": "另有 {n} 个群聊",
    "all_chats": "全部群聊",
    "total": "合计",
    "total_inline": "合计",
    "kpi_messages": "消息总数",
    "kpi_chats": "群聊数",
    "kpi_per_day": "日均消息",
    "kpi_mood": "平均情绪分",
    "kpi_negative": "负面消息占比",
    "kpi_peak": "最忙时段",
    "words": "热门词汇",
    "words_cap": "出现次数最多的词；条形长度为次数，括号内为占全部统计词数的比例。",
    "cloud": "词云",
    "cloud_cap": "字号随出现次数增大；把鼠标停在词上可看次数。",
    "daily": "每日消息量",
    "daily_cap": "所有群聊合计，以及消息最多的 {n} 个群聊；灰底为周末。",
    "heatmap": "活跃时段",
    "heatmap_grid": "活跃时段（星期 × 小时）",
    "heatmap_cap": "一周七天 × 二十四小时的消息数，颜色越深越忙。",
    "heatmap_peak": "最忙：{slot}，共 {n} 条。",
    "ticks_mondays": "刻度为每周一",
    "busiest": "最活跃的群聊",
    "busiest_cap": "统计区间内的消息数。",
    "sentiment": "情绪趋势",
    "sentiment_cap": (
        "上：每日平均情绪分（0 = 负面，1 = 正面，虚线为中性 0.5）；下：当天负面消息的占比。"
    ),
    "mean": "平均分",
    "median": "中位数",
    "neg_share": "负面占比",
    "messages": "消息",
    "messages_column": "消息",
    "speakers": "发言最多的成员",
    "speakers_cap": "按发言条数排序；占比为该成员在所在群聊消息中的份额。",
    "rank": "#",
    "member": "成员",
    "chat": "群聊",
    "share": "占比",
    "lurkers": "潜水成员",
    "lurkers_cap": "统计区间内一条消息都没有发的群成员。",
    "more_people": "另有 {n} 人",
    "negatives": "最负面的消息",
    "negatives_cap": "情绪分最低的消息；复制下方命令可在终端查看前后文。",
    "score": "情绪分",
    "no_data": "暂无数据",
    "no_data_inline": "暂无数据",
    "no_data_hint": "这个时间段里没有可统计的消息。",
    "no_data_lurkers": "没有潜水成员：每位成员都发过言，或者没有群成员名单。",
    "no_data_negatives": "没有打过情绪分的消息。",
    "no_data_sentiment": "没有打过情绪分的消息。",
    "footer_sentiment": (
        "情绪分由 snownlp 计算。它的模型是用购物评论训练的，单条消息的分数可能不准，"
        "请把分数当作趋势来看，而不是定论。"
    ),
    "footer_terminal": "情绪分来自 snownlp（以购物评论训练），请当作趋势参考。",
    "footer_offline": "本报告是一个独立文件，打开时不会加载任何网络资源。",
    "weekdays": "周一,周二,周三,周四,周五,周六,周日",
    "slot": "{wd} {h:02d}:00–{h2:02d}:00",
    "chart_words": "热门词汇条形图",
    "chart_cloud": "词云",
    "chart_daily": "每日消息量折线图",
    "chart_heatmap": "星期与小时活跃热力图",
    "chart_busiest": "最活跃群聊条形图",
    "chart_sentiment": "每日情绪趋势图",
}

EN: dict[str, str] = {
    "lang": "en",
    "period": "Period",
    "timezone": "Time zone",
    "account": "Account",
    "generated": "Generated",
    "chats": "Chats",
    "chats_unit": "chats",
    "more_chats": "{n} more chats",
    "all_chats": "All chats",
    "total": "Total",
    "total_inline": "total",
    "kpi_messages": "Messages",
    "kpi_chats": "Chats",
    "kpi_per_day": "Messages per day",
    "kpi_mood": "Mean sentiment",
    "kpi_negative": "Negative share",
    "kpi_peak": "Busiest hour",
    "words": "Top words",
    "words_cap": "The most frequent words; bar length is the count, the bracket its share of "
    "all counted words.",
    "cloud": "Word cloud",
    "cloud_cap": "Bigger means more frequent; hover a word for its count.",
    "daily": "Messages per day",
    "daily_cap": "All chats together and the {n} busiest chats; grey columns are weekends.",
    "heatmap": "When chats are busy",
    "heatmap_grid": "When chats are busy (weekday × hour)",
    "heatmap_cap": "Messages by weekday and hour; darker is busier.",
    "heatmap_peak": "Busiest: {slot}, {n} messages.",
    "ticks_mondays": "ticks on Mondays",
    "busiest": "Busiest chats",
    "busiest_cap": "Messages in the period.",
    "sentiment": "Sentiment trend",
    "sentiment_cap": "Top: daily mean score (0 = negative, 1 = positive; dashed line is "
    "neutral 0.5). Bottom: share of that day's messages that read negative.",
    "mean": "mean",
    "median": "median",
    "neg_share": "negative",
    "messages": "messages",
    "messages_column": "Messages",
    "speakers": "Top speakers",
    "speakers_cap": "By messages sent; share is the member's part of their chat's messages.",
    "rank": "#",
    "member": "Member",
    "chat": "Chat",
    "share": "Share",
    "lurkers": "Lurkers",
    "lurkers_cap": "Members who sent nothing in the period.",
    "more_people": "{n} more",
    "negatives": "Most negative messages",
    "negatives_cap": "Lowest-scoring messages; run the command shown to read the context.",
    "score": "score",
    "no_data": "No data",
    "no_data_inline": "no data",
    "no_data_hint": "Nothing to count in this period.",
    "no_data_lurkers": "No lurkers: everyone spoke, or no member lists were recorded.",
    "no_data_negatives": "No scored messages.",
    "no_data_sentiment": "No scored messages.",
    "footer_sentiment": "Sentiment scores come from snownlp, whose model was trained on "
    "shopping reviews: single scores can be off, so read them as trends, not verdicts.",
    "footer_terminal": "Sentiment comes from snownlp (trained on shopping reviews): "
    "read it as a trend.",
    "footer_offline": "This report is a single file and loads nothing from the network.",
    "weekdays": "Mon,Tue,Wed,Thu,Fri,Sat,Sun",
    "slot": "{wd} {h:02d}:00–{h2:02d}:00",
    "chart_words": "Bar chart of top words",
    "chart_cloud": "Word cloud",
    "chart_daily": "Line chart of messages per day",
    "chart_heatmap": "Heat map of messages by weekday and hour",
    "chart_busiest": "Bar chart of the busiest chats",
    "chart_sentiment": "Daily sentiment trend",
}

#: Every language the reports speak; an unknown one falls back to Chinese, the default.
LABELS: dict[str, dict[str, str]] = {"zh": ZH, "en": EN}


def labels(lang: str) -> dict[str, str]:
    """The table for ``lang`` (``"zh"`` or ``"en"``), Chinese for anything else."""
    return LABELS.get(lang, ZH)
