"""Sweep summaries: one table and one size-vs-quality plot for every member of a sweep.

A Hydra multirun (``python -m slim -m method=q8_0,q5_k_m,q4_k_m hardware=apple8gb``)
runs one build per member through the shared cache. The :class:`SweepSummary`
callback (``hydra.callbacks.sweep_summary`` in ``conf/config.yaml``) records
each member as it ends -- including failed ones, with their error -- in
``<sweep dir>/<job num>/member.json`` and writes, into the sweep dir
(``builds/_sweeps/<timestamp>/``):

* ``summary.md``   -- Markdown table: size, bpw, fidelity, retention, fit, status, signature
* ``summary.csv``  -- the same, one row per member, one column per probe category
* ``summary.json`` -- the same rows with full detail (schema ``slim.sweep/v1``)
* ``frontier.png`` -- size (MB) against mean probe retention and against 1 - KLD, every
  member labelled, the Pareto frontier (smaller and better) drawn as a line

Member records go to disk rather than the callback's memory because launchers
(joblib, submitit, Ray) run ``on_job_end`` in other processes or on other
machines. The summary is rewritten after every member (under a file lock), so
a sweep that stops early -- Hydra raises after a failed member and then never
calls ``on_multirun_end`` -- still leaves a summary naming every member that ran;
``complete`` in summary.json says whether every expected member reported.

Also usable without Hydra::

    python -m slim.sweep summarise builds/a builds/b --out DIR   # any build folders
    python -m slim.sweep resummarise builds/_sweeps/<timestamp>    # a sweep dir, again
    python -m slim.sweep metrics builds/<name> OUT.json           # flat metrics (DVC)
    python -m slim.sweep targets ci                               # build names in params.yaml
    python -m slim.sweep summarise-targets ci --out DIR           # summarise those builds"""
from slim.sweep.callback import SweepSummary, member_record
from slim.sweep.cli import main, targets, write_metrics
from slim.sweep.collect import member_row, metrics_of
from slim.sweep.frontier import pareto_front
from slim.sweep.plot import plot_frontier
from slim.sweep.render import render_csv, render_markdown
from slim.sweep.summary import (EXPECTED_FILE, MEMBER_FILE, OUTPUT_FILES, SCHEMA, summarise,
                                summarise_sweep)

__all__ = ["EXPECTED_FILE", "MEMBER_FILE", "OUTPUT_FILES", "SCHEMA", "SweepSummary", "main",
           "member_record", "member_row", "metrics_of", "pareto_front", "plot_frontier",
           "render_csv", "render_markdown", "summarise", "summarise_sweep", "targets",
           "write_metrics"]
