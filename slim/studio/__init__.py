"""The studio: ``python -m slim.studio`` serves builds/, its sweeps and builds in progress as
local web pages (the "compression page" of the registry, in a browser).

Read-only unless started with ``--allow-builds``; binds to 127.0.0.1 unless ``--host`` says
otherwise. Every number comes from the builds' own report.json, every plot from the code that
draws the reports and sweep summaries.
"""
