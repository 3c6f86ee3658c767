"""The benchmark suite behind `make bench` (issue 8, docs/BENCHMARKS.md).

Each benchmark measures one product operation and a baseline for the same work measured in the
same run (a hand-written SQL statement, a minimal Django view, boto3, the REST call), and reports
the median of several runs and the ratio between the two. Datasets are generated once per scale
and seed into a template database; every measured run starts from a fresh copy of it."""
