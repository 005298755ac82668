"""The `serve` section of params.yaml: `ftpipe serve`'s alias, address, bounds, swap check and request log.

No DVC stage reads it: the resident server (flows/commands/serve/) does, like `retrain` is the flow's own.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from stages.config.params import StageParams


class ServeParams(StageParams):
    """The `serve` section of params.yaml (`ftpipe serve`; docs/serving.md)."""

    alias: str = Field(
        "champion",
        pattern=r"^[A-Za-z_][A-Za-z0-9_-]{0,99}$",
        description="the alias of register.model_name the server follows (`--alias`)",
    )
    host: str = Field("127.0.0.1", min_length=1, description="address to listen on (`--host`)")
    port: int = Field(8080, ge=1, le=65535, description="port to listen on (`--port`)")
    poll_seconds: float = Field(
        30.0, gt=0.0, le=86400.0, description="how often the registry is asked where the alias points"
    )
    max_request_bytes: int = Field(
        1 << 20, ge=1024, description="largest request body; a larger one is answered 413"
    )
    max_rows: int = Field(256, ge=1, description="most texts in one request; more is answered 400")
    max_in_flight: int = Field(
        8, ge=1, description="requests answered at once; one more is answered 503 with Retry-After"
    )
    retry_after_s: int = Field(1, ge=1, le=3600, description="the Retry-After of a 503")
    precision: Literal["fp32", "auto"] = Field(
        "fp32",
        description="the served forward pass: auto runs it under bf16 autocast where the CPU or GPU computes "
        "bf16 natively, else fp32 (on a 2-vCPU Xeon with AMX, bf16 autocast served slower than fp32)",
    )
    quantize: Literal["registered", "none", "int8"] = Field(
        "registered",
        description="int8: dynamic quantization of the Linear layers (CPU; probabilities move by up to "
        "~0.3, so raise smoke_tolerance with it); none: unquantized; registered: as register.quantize set",
    )
    smoke_tolerance: float = Field(
        0.01,
        gt=0.0,
        le=0.5,
        description="largest difference of a class probability from the one the version recorded at "
        "registration before a candidate is refused",
    )
    drain_seconds: float = Field(
        30.0, gt=0.0, description="on SIGTERM, how long requests in flight may take to finish"
    )
    log_dir: str = Field(
        "serve-logs", min_length=1, description="folder of the request log's Parquet segments"
    )
    log_max_bytes: int = Field(
        256 << 20, ge=4096, description="the request log's cap: the oldest segments are removed above it"
    )
    log_retention_days: float = Field(30.0, gt=0.0, description="segments older than this are removed")
    sample_rate: float = Field(
        1.0, ge=0.0, le=1.0, description="share of answered rows written to the request log"
    )
    log_texts: bool = Field(False, description="also log each row's text (it may hold personal data)")
    log_queue_rows: int = Field(
        10000, ge=1, description="rows waiting for the log writer; beyond it rows are dropped, counted"
    )
    log_flush_seconds: float = Field(
        5.0, gt=0.0, le=3600.0, description="how often waiting rows are written as one Parquet segment"
    )
