"""The run directory: the typed, versioned log every reader reads (`spec.json`, `samples.jsonl`, `summary.json`).

This package owns the contract. `RunSpec` and `SampleRecord` are its pydantic models (with `SCHEMA_VERSION`),
`RunIdentity.differences` is the one answer to "do these runs measure the same thing?", and `Journal` writes a run
as it goes. Readers use `run_spec` / `sample_records` (typed) or `read_spec` / `read_records` (validated JSON
objects); lines written before versioning are read and upgraded.
"""

from s2s_eval.log._items import ITEMS, read_items, write_items
from s2s_eval.log._journal import (
    RECORD_FIELDS,
    SAMPLES,
    SPEC,
    SUMMARY,
    Journal,
    contained_file,
    parse_record,
    read_records,
    read_spec,
    run_spec,
    sample_records,
    write_json,
)
from s2s_eval.log._record import (
    SCHEMA_VERSION,
    Attempt,
    Dynamics,
    ErrorInfo,
    FunctionCallInfo,
    GradeInfo,
    InputClip,
    Latency,
    ResponseInfo,
    SampleRecord,
    Trial,
    sum_usage,
)
from s2s_eval.log._spec import FACETS, Difference, Facet, RunIdentity, RunSpec

__all__ = [
    "FACETS", "ITEMS", "RECORD_FIELDS", "SAMPLES", "SCHEMA_VERSION", "SPEC", "SUMMARY", "Attempt", "Difference",
    "Dynamics", "ErrorInfo", "Facet", "FunctionCallInfo", "GradeInfo", "InputClip", "Journal", "Latency",
    "ResponseInfo", "RunIdentity", "RunSpec", "SampleRecord", "Trial", "contained_file", "parse_record", "read_items",
    "read_records", "read_spec", "run_spec", "sample_records", "sum_usage", "write_items", "write_json",
]
