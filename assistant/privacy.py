"""Personal data out of everything kept: questions, history, rewritten queries, feedback and logs.

A fixed, tested set of patterns for the personal data enterprises type into a policy question, in
Chinese and international forms: e-mail addresses (also internationalised, with a full-width @),
unified social credit codes, resident ID numbers (18 and 15 digits), bank card numbers (with or
without spaces), mobile and landline phone numbers (dotted, spaced, +86, international), passport
numbers, and names where the context says it is a name (我叫…, 联系人：…, "my name is …").

Full-width digits and letters are matched as their ASCII forms on a copy of the text with the same
length, so the spans found there are cut out of the original, which is otherwise kept as typed.
Over-redacting a number costs an insights example a digit; missing one keeps someone's card number
for 180 days, so the patterns do not ask for a valid checksum. `docs/decisions.md` says why no
library does this.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

# Full-width forms (U+FF01-FF5E) to ASCII, one character for one, so indices stay aligned.
_FOLD = {cp: cp - 0xFEE0 for cp in range(0xFF01, 0xFF5F)} | {0x3000: 0x20}

_SEP = r"[ .\-]"  # what people put between digit groups
_NOT_ALNUM_BEFORE = r"(?<![0-9A-Za-z])"
_NOT_ALNUM_AFTER = r"(?![0-9A-Za-z])"
_CJK = "\u4e00-\u9fff"
_LATIN_EXT = "\u00c0-\u024f\u0370-\u03ff\u0400-\u04ff"

# The most common Chinese surnames (about nine people in ten carry one): a name after a weak cue
# such as 我是 must start with one, so "我是一家小微企业" stays.
SURNAMES = set(
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任"
    "沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔"
    "向汤常温康施文牛樊葛邢安齐易乔伍庞颜倪庄聂章鲁岳翟殷詹申欧耿关兰焦俞左柳甘祝包宁尚符舒阮柯纪梅童凌"
    "毕单季裴霍涂成苗谷盛曲翁冉骆蓝路游辛靳管柴蒙鲍华喻祁蒲房滕屈饶解牟艾尤阳穆农司卓古吉缪简车项连芦"
    "麦褚娄窦戚岑景党宫费卜冷晏席卫米柏宗瞿桂全佟应臧闵苟邬边卞姬师仇栾隋商刁沙荣巫寇桑郎甄丛仲虞敖巩"
    "明佘池查麻苑迟邝")
_SURNAME = "[" + "".join(sorted(SURNAMES)) + "]"
_NAME_END = r"(?=$|[\s,，.。!！?？;；:：、)）]|先生|女士|小姐)"


@dataclass(frozen=True)
class Pattern:
    """One kind of personal data. With `cue`, group 1 is the words that said what follows (我叫,
    护照号, "my name is") and stays; `accept` can reject a match the regex alone cannot judge."""

    kind: str
    regex: re.Pattern
    placeholder: str
    cue: bool = False
    accept: Callable[[str], bool] | None = None


def _phone_length(match: str) -> bool:
    return 8 <= sum(ch.isdigit() for ch in match) <= 15


def _p(kind: str, regex: str, placeholder: str, **kw) -> Pattern:
    return Pattern(kind, re.compile(regex), placeholder, **kw)


# Order matters: an e-mail address holds digits, an ID number holds a phone-like run, and names
# come last so that their cues are matched on text already redacted.
PATTERNS: tuple[Pattern, ...] = (
    _p("email", rf"(?:[A-Za-z0-9._%+\-{_LATIN_EXT}]+|[{_CJK}]+)@"
                rf"(?:(?:[A-Za-z0-9\-]+|[{_LATIN_EXT}{_CJK}\-]+)\.)+(?:[A-Za-z]{{2,}}|[{_LATIN_EXT}{_CJK}]{{2,}})",
       "[email]"),
    _p("id18", _NOT_ALNUM_BEFORE + rf"\d{{6}}{_SEP}?(?:19|20)\d{{2}}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])"
               rf"{_SEP}?\d{{3}}[\dXx]" + _NOT_ALNUM_AFTER, "[id]"),
    # 18 characters of the code's alphabet (no I, O, S, V, Z) with at least one letter: an
    # all-digit run is an ID or a card number, redacted as those.
    _p("credit_code", _NOT_ALNUM_BEFORE + r"(?=\d*[A-Z])[0-9A-HJ-NPQRTUWXY]{2}\d{6}[0-9A-HJ-NPQRTUWXY]{10}"
                      + _NOT_ALNUM_AFTER, "[credit_code]"),
    _p("card", _NOT_ALNUM_BEFORE + rf"(?:\d{{16,19}}|\d{{4}}(?:{_SEP}\d{{4}}){{3}}(?:{_SEP}?\d{{1,3}})?)"
               + _NOT_ALNUM_AFTER, "[card]"),
    _p("id15", _NOT_ALNUM_BEFORE + r"\d{15}" + _NOT_ALNUM_AFTER, "[id]"),
    _p("mobile", r"(?<![\d+])(?:(?:\+|00)86[ .\-]?|\(\+?86\)[ ]?)?1[3-9]\d(?:[ .\-]?\d){8}(?!\d)", "[phone]"),
    _p("international_phone", r"(?<![\w+])(?:\+|00)[1-9]\d{0,2}(?:[ .\-]?\(?\d{1,4}\)?){2,5}(?!\d)", "[phone]",
       accept=_phone_length),
    _p("landline", _NOT_ALNUM_BEFORE + r"(?:\(0\d{2,3}\)|0\d{2,3})[ .\-]?\d{3,4}[ .\-]?\d{4}"
                   r"(?:[ ]?(?:转|ext\.?|x)[ ]?\d{1,5})?(?!\d)", "[phone]"),
    _p("us_phone", r"(?<!\d)\(\d{3}\)[ ]?\d{3}[ .\-]\d{4}(?!\d)", "[phone]"),
    _p("passport_cue", r"((?:护照(?:号码|号)?|(?i:passport)(?:[ ]+(?i:no\.?|number|#))?)[ ]*[:：]?[ ]*)"
                       r"[A-Za-z]{0,2}\d{6,9}" + _NOT_ALNUM_AFTER, "[passport]", cue=True),
    _p("passport", _NOT_ALNUM_BEFORE + r"(?:[EG]\d{8}|E[A-HJ-NP-Z]\d{7})" + _NOT_ALNUM_AFTER, "[passport]"),
    _p("name_strong_cue", rf"((?:我叫|我的名字[是叫]|名字[是叫]|名叫|本人姓名)[ ]*[:：]?[ ]*)[{_CJK}]{{2,3}}", "[name]",
       cue=True),
    _p("name_label", rf"((?:姓名|联系人|申请人|法定代表人|法人代表|负责人|经办人)[ ]*(?:[:：]|是|为)[ ]*)[{_CJK}]{{2,3}}",
       "[name]", cue=True),
    _p("name_label_bare", rf"((?:姓名|联系人|申请人|法定代表人|法人代表|经办人)[ ]*){_SURNAME}[{_CJK}]{{1,2}}{_NAME_END}",
       "[name]", cue=True),
    _p("name_weak_cue", rf"((?:我是)[ ]*){_SURNAME}[{_CJK}]{{1,2}}{_NAME_END}", "[name]", cue=True),
    _p("name_title", rf"{_SURNAME}(?=先生|女士|小姐)", "[name]"),
    _p("name_en", r"((?i:my name is|name[ ]*[:：]|contact(?: person)?[ ]*[:：]|this is)[ ]*)"
                  r"[A-Z][a-z'\-]+(?:[ ]+[A-Z][a-z'\-]+){0,2}", "[name]", cue=True),
)

_SURROGATE = re.compile("[\ud800-\udfff]")


def redact(text: str | None) -> str:
    """Replace personal data with placeholders ([name], [phone], [id], [card], [credit_code],
    [passport], [email]); everything else is kept as written.

    Example:
        >>> redact("我叫张伟，手机１３８ １２３４ ５６７８，邮箱 li＠example.com")
        '我叫[name]，手机[phone]，邮箱 [email]'
    """
    if not text:
        return text or ""
    # SQLite stores UTF-8, which cannot hold an unpaired surrogate (JSON can spell one: "\ud800");
    # one such character must not cost the whole record.
    text = _SURROGATE.sub("\ufffd", text)
    for pattern in PATTERNS:
        folded = text.translate(_FOLD)  # same length: spans found here are spans of `text`
        pieces: list[str] = []
        last = 0
        for m in pattern.regex.finditer(folded):
            if pattern.accept is not None and not pattern.accept(m.group(0)):
                continue
            start = m.end(1) if pattern.cue else m.start()
            pieces += [text[last:start], pattern.placeholder]
            last = m.end()
        if pieces:
            text = "".join(pieces) + text[last:]
    return text


class RedactingFilter(logging.Filter):
    """Redacts each log record's message before any handler writes it."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a malformed record is logging's to report, not ours
            return True
        redacted = redact(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        return True


def redact_logs(logger: logging.Logger | None = None) -> None:
    """Put the redacting filter on every handler of `logger` (default: the root logger), once."""
    logger = logger or logging.getLogger()
    for handler in logger.handlers:
        if not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(RedactingFilter())


def private_file(path: Path) -> None:
    """Create `path` (and its folder) readable by the owner only, or make it so; SQLite gives its
    -wal and -shm files the database file's permissions."""
    if str(path) == ":memory:":
        return
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o600)
    os.close(fd)
    for p in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        if p.exists():
            os.chmod(p, 0o600)
