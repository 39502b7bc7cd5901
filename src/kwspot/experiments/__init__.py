"""Fair comparisons: every model trained by one pipeline on one prepared manifest, several
seeds each, evaluated on the same test clips, timed on this machine (``kwspot table``)."""

from kwspot.experiments.jobs import Job, JobResult, run_job
from kwspot.experiments.latency import measure_latency
from kwspot.experiments.table import TableConfig, build_table, summarize

__all__ = ["Job", "JobResult", "TableConfig", "build_table", "measure_latency", "run_job",
           "summarize"]
