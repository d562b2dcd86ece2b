"""Interface wording in both languages. Answers follow the question's language; these follow the switch."""

from __future__ import annotations

LANGUAGES = {"zh": "中文", "en": "English"}

TEXTS: dict[str, dict[str, str]] = {
    "en": {
        "title": "Jing Xiao A · Enterprise policy assistant",
        "subtitle": "Ask about support measures in the Shanghai business-environment policies, in English or "
                    "Chinese. Every answer cites the measure it comes from.",
        "human": "Prefer a person? Call the **12345** citizen service hotline, or visit the **enterprise service "
                 "desk** at your district administrative service centre.",
        "chat_label": "Conversation",
        "chat_placeholder": "Ask a question below, or pick one of the suggestions.",
        "input_placeholder": "Type your question, e.g. What support is there for protecting patents?",
        "send": "Ask",
        "new": "New conversation",
        "starters": "Suggested questions",
        "sources": "Sources",
        "related": "Related",
        "expired": "EXPIRED",
        "no_expiry": "no end date stated",
        "valid_until": "Valid until",
        "doc_number": "Document number",
        "issuer": "Issued by",
        "departments": "Responsible departments",
        "labels_kind": "Support",
        "labels_for": "For",
        "labels_where": "Where",
        "document": "Document",
        "close": "Close",
        "comment_label": "Anything to add? (optional, do not include personal details)",
        "comment_send": "Send comment",
        "thanks": "Thank you for your feedback.",
        "thanks_comment": "Thank you, your comment was saved.",
        "waiting": "Waiting: {n} question(s) ahead of yours…",
        "thinking": "Looking through the policies…",
        "busy": "The assistant is busy answering other questions right now. Please try again in about {s} seconds.",
        "rate_limited": "That is a lot of questions in a short time. Please wait about {s} seconds, then ask again.",
        "starting": "The assistant is still starting up. Please try again in a minute.",
        "unavailable": "The assistant cannot answer right now. Please try again later, or call the 12345 hotline.",
        "error": "Sorry, something went wrong on our side while answering. Please try again, or call the 12345 "
                 "hotline.",
        "invalid": "That question could not be used: {msg}.",
        "refusal_hint": "These measures were the closest matches; they may still help:",
        "kiosk_idle": "For privacy, the conversation is cleared after {s} seconds without activity.",
    },
    "zh": {
        "title": "Jing Xiao A · 企业政策助手",
        "subtitle": "用中文或英文询问上海营商环境政策中的支持措施，每个回答都会注明出处措施。",
        "human": "需要人工服务？请拨打 **12345** 市民服务热线，或前往所在区行政服务中心的**企业服务窗口**。",
        "chat_label": "对话",
        "chat_placeholder": "请在下方输入问题，或选择一个推荐问题。",
        "input_placeholder": "请输入您的问题，例如：保护专利有哪些支持措施？",
        "send": "提问",
        "new": "新对话",
        "starters": "推荐问题",
        "sources": "出处",
        "related": "相关措施",
        "expired": "已过期",
        "no_expiry": "未注明截止日期",
        "valid_until": "有效期至",
        "doc_number": "文号",
        "issuer": "发文单位",
        "departments": "责任部门",
        "labels_kind": "支持类型",
        "labels_for": "面向",
        "labels_where": "地点",
        "document": "文件",
        "close": "关闭",
        "comment_label": "还有什么想补充的吗？（选填，请勿填写个人信息）",
        "comment_send": "提交意见",
        "thanks": "感谢您的反馈。",
        "thanks_comment": "谢谢，您的意见已保存。",
        "waiting": "排队中：前面还有 {n} 个问题……",
        "thinking": "正在查阅政策……",
        "busy": "助手正在回答其他问题，请约 {s} 秒后再试。",
        "rate_limited": "您在短时间内提问较多，请约 {s} 秒后再试。",
        "starting": "助手正在启动，请一分钟后再试。",
        "unavailable": "助手暂时无法回答，请稍后再试，或拨打 12345 热线。",
        "error": "抱歉，回答时出现了问题。请重试，或拨打 12345 热线。",
        "invalid": "无法处理该问题：{msg}。",
        "refusal_hint": "以下是最接近的措施，或许仍有帮助：",
        "kiosk_idle": "为保护隐私，{s} 秒无操作后对话将自动清除。",
    },
}


def t(lang: str, key: str, **kw) -> str:
    text = TEXTS.get(lang, TEXTS["en"])[key]
    return text.format(**kw) if kw else text
