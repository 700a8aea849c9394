"""Many jobs, or one image larger than a machine, filled on Dask distributed (an optional
dependency, imported on first use): the jobs and their table, the fills a job may name, the
tasks that run on the workers, the tiles of a mosaic, the run manifest, and the runner."""
