"""Tokens for BM25: jieba words for Chinese runs, stemmed words for Latin runs.

Input is expected in index form (see corpus.clean.normalize_for_index): simplified, lower-case.
"""

from __future__ import annotations

import logging
import re
from functools import lru_cache

from ..corpus.clean import CJK

_RUNS = re.compile(f"[{CJK}]+|[a-z0-9]+(?:[.'][a-z0-9]+)*")
_CJK_RUN = re.compile(f"^[{CJK}]+$")

STOP_EN = frozenset("""
a an and are as at be by can could do does for from has have how i if in into is it its me my of on or our
shall should so than that the their them there these they this to us was we what when where which who will
with would you your about any also been being both but each more most other some such there very via
""".split())
STOP_ZH = frozenset("""
的 了 和 与 及 或 在 是 有 对 为 等 将 把 被 也 都 就 而 并 从 以 于 之 其 这 那 哪 吗 呢 吧 啊 么 什么 怎么 如何 哪些
我 我们 你 你们 他 她 它 公司 可以 能 能否 是否 一些 一个 方面 相关 进一步
""".split())


@lru_cache(maxsize=1)
def _jieba():
    import jieba

    jieba.setLogLevel(logging.WARNING)
    jieba.initialize()
    return jieba


@lru_cache(maxsize=1)
def _stemmer():
    import Stemmer

    return Stemmer.Stemmer("english")


def tokenize(text: str) -> list[str]:
    """Split index-form text into BM25 terms.

    Example:
        >>> tokenize("支持企业知识产权 protection of patents")
        ['支持', '企业', '知识', '产权', '知识产权', 'protect', 'patent']
    """
    out: list[str] = []
    for run in _RUNS.findall(text):
        if _CJK_RUN.match(run):
            out.extend(w for w in _jieba().cut_for_search(run) if w not in STOP_ZH)
        elif run not in STOP_EN and len(run) > 1:
            out.append(_stemmer().stemWord(run))
    return out
