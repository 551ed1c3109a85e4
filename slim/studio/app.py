"""The studio's Starlette application: routes and the pages they render.

Pages: ``/`` (parents, sweeps, builds in progress), ``/parent/<id>`` (every variant of a
parent, sortable, with its frontier plot), ``/build/<name>/`` (report, gates, lineage,
verify, downloads), ``/sweep/<id>``, ``/progress/<name>`` (live steps, then the report),
``/new`` (the build form, with ``--allow-builds`` only). ``/api/progress/<name>`` is what
the progress page polls.
"""
from __future__ import annotations

import contextlib
import json
import re
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from markdown_it import MarkdownIt
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

# Page handlers are plain functions: Starlette runs them in its thread pool, so hashing a build
# for verify or drawing a plot does not stall the progress page's polling.

from slim.errors import SlimError
from slim.registry import format_lineage
from slim.studio import fmt
from slim.studio.catalog import Catalog, read_report
from slim.studio.launch import DEFAULTS, Launcher, choices, max_threads, validate_form
from slim.studio.lineage import load_steps, step_tree
from slim.studio.plots import FrontierPlots
from slim.studio.progress import progress, read_events, staging_builds, summarise

HERE = Path(__file__).resolve().parent


@dataclass
class StudioConfig:
    builds: Path
    trusted: dict = field(default_factory=dict)
    allow_builds: bool = False
    state_dir: Path | None = None  # plots and job logs; a temp dir when None
    poll_ms: int = 1000


#: a ``*`` beside a quote or slash is a glob in a gate's text ('*', 'safety/*'), not emphasis
_GLOB_STAR = re.compile(r"(?<=['/])\*|\*(?=')")


def render_md(md: MarkdownIt, text: str) -> str:
    """report.md / summary.md as HTML; glob stars in gate texts stay literal."""
    return md.render(_GLOB_STAR.sub(r"\*", text))


def _md() -> MarkdownIt:
    # html off: a report's text is shown, never interpreted as markup
    return MarkdownIt("commonmark", {"html": False}).enable("table")


def create_app(conf: StudioConfig) -> Starlette:
    state_dir = Path(conf.state_dir or tempfile.mkdtemp(prefix="slim-studio-"))
    catalog = Catalog(conf.builds, conf.trusted)
    plots = FrontierPlots(state_dir / "plots")
    launcher = Launcher(conf.builds, state_dir / "jobs") if conf.allow_builds else None
    templates = Jinja2Templates(directory=str(HERE / "templates"))
    templates.env.globals.update(fmt=fmt, allow_builds=conf.allow_builds, poll_ms=conf.poll_ms)
    md = _md()

    def page(request: Request, template: str, status: int = 200, **ctx) -> Response:
        return templates.TemplateResponse(request, template, ctx, status_code=status)

    def not_found(request: Request, why: str) -> Response:
        return page(request, "error.html", status=404, title="Not found", message=why)

    def index(request: Request) -> Response:
        parents = []
        for p in catalog.parents():
            rows = [catalog.variant_row(e) for e in p["entries"]]
            parents.append({**p, "rows": rows})
        return page(request, "index.html", title="slim studio", parents=parents,
                    sweeps=catalog.sweeps(), running=staging_builds(conf.builds),
                    builds=conf.builds)

    def parent(request: Request) -> Response:
        try:
            p = catalog.parent(request.path_params["slug"])
        except SlimError as e:
            return not_found(request, str(e))
        rows = [catalog.variant_row(e) for e in p["entries"]]
        tiers = sorted({t["tier"] for r in rows for t in r["tiers"]})
        return page(request, "parent.html", title=f"parent {p['id']}", parent=p, rows=rows,
                    tiers=tiers, running=staging_builds(conf.builds))

    def parent_frontier(request: Request) -> Response:
        try:
            p = catalog.parent(request.path_params["slug"])
        except SlimError as e:
            return not_found(request, str(e))
        png = plots.parent_png(p["slug"], f"variants of {p['id']}",
                               [Path(e["_dir"]) for e in p["entries"]])
        return Response(png, media_type="image/png", headers={"Cache-Control": "no-cache"})

    def build_redirect(request: Request) -> Response:
        return RedirectResponse(f"/build/{request.path_params['name']}/", status_code=307)

    def build(request: Request) -> Response:
        name = request.path_params["name"]
        try:
            d = catalog.build_dir(name)
        except SlimError as e:
            if any(b["name"] == name for b in staging_builds(conf.builds)):
                return RedirectResponse(f"/progress/{name}", status_code=303)
            return not_found(request, str(e))
        report = read_report(d) or {}
        entries = catalog.entries()
        entry = next((e for e in entries if Path(e["_dir"]) == d), {"name": name, "_dir": str(d)})
        row = catalog.variant_row(entry)
        md_text = (d / "report.md").read_text(encoding="utf-8") if (d / "report.md").is_file() else ""
        try:
            build_lineage = format_lineage(entries, name)
        except SlimError:
            build_lineage = ""
        files = sorted(str(p.relative_to(d)) for p in d.rglob("*") if p.is_file())
        art_files = sorted(((report.get("artifact") or {}).get("files") or {}))
        return page(request, "build.html", title=name, name=name, report=report, row=row,
                    report_html=render_md(md, md_text), tree=step_tree(report, load_steps(d)),
                    build_lineage=build_lineage, verify=catalog.verify(d), files=files,
                    artifact_files=art_files, dir=d,
                    rebuilding=any(b["name"] == name for b in staging_builds(conf.builds)),
                    events=summarise(read_events(d / "events.jsonl")))

    def build_file(request: Request) -> Response:
        name, rel = request.path_params["name"], request.path_params["path"]
        try:
            p = catalog.build_file(name, rel)
        except SlimError as e:
            return not_found(request, str(e))
        inline = p.suffix in (".png", ".md", ".json", ".jsonl", ".yaml") or p.name == "Modelfile"
        return FileResponse(p, filename=None if inline else p.name,
                            media_type="text/plain; charset=utf-8" if p.suffix in (".md", ".yaml", ".jsonl")
                            or p.name == "Modelfile" else None)

    def sweep(request: Request) -> Response:
        try:
            s = catalog.sweep(request.path_params["sid"])
        except SlimError as e:
            return not_found(request, str(e))
        md_file = s["dir"] / "summary.md"
        text = md_file.read_text(encoding="utf-8") if md_file.is_file() else ""
        # the page shows frontier.png at the top; the summary's own link to it is dropped
        text = "\n".join(l for l in text.splitlines() if "](frontier.png)" not in l)
        html = render_md(md, text)
        return page(request, "sweep.html", title=f"sweep {s['id']}", sweep=s, summary=s["summary"],
                    summary_html=html, has_plot=(s["dir"] / "frontier.png").is_file())

    def sweep_file(request: Request) -> Response:
        try:
            s = catalog.sweep(request.path_params["sid"])
        except SlimError as e:
            return not_found(request, str(e))
        fname = request.path_params["fname"]
        if fname not in ("frontier.png", "summary.md", "summary.csv", "summary.json"):
            return not_found(request, f"no file {fname!r} in sweep {s['id']}")
        p = s["dir"] / fname
        if not p.is_file():
            return not_found(request, f"no file {fname!r} in sweep {s['id']}")
        return FileResponse(p)

    def _after(request: Request, name: str) -> tuple[float, object]:
        job = launcher.jobs.get(request.query_params.get("job", "")) if launcher else None
        if job is not None and job.name != name:
            job = None
        try:
            after = float(request.query_params["after"])
        except (KeyError, ValueError):
            live = [b for b in staging_builds(conf.builds) if b["name"] == name]
            after = job.started if job else (live[0]["started"] if live else time.time())
        return after, job

    def progress_page(request: Request) -> Response:
        name = request.path_params["name"]
        after, job = _after(request, name)
        st = progress(conf.builds, name, after, job)
        return page(request, "progress.html", title=f"building {name}", name=name, after=after,
                    job=job, st=st)

    def progress_api(request: Request) -> Response:
        name = request.path_params["name"]
        after, job = _after(request, name)
        return JSONResponse(progress(conf.builds, name, after, job))

    async def new_form(request: Request) -> Response:
        if launcher is None:
            return page(request, "error.html", status=403, title="Read-only",
                        message="This studio is read-only: start it with --allow-builds to start "
                                "builds from the browser.")
        if request.method == "GET":
            return page(request, "new.html", title="Start a build", choices=choices(),
                        picked=dict(DEFAULTS, threads=1), errors=[], max_threads=max_threads(),
                        jobs=sorted(launcher.jobs.values(), key=lambda j: -j.started))
        form = await request.form()
        picked, errors = validate_form(dict(form))
        if errors:
            return page(request, "new.html", status=400, title="Start a build", choices=choices(),
                        picked={**DEFAULTS, "threads": 1, **{k: v for k, v in form.items()}},
                        errors=errors, max_threads=max_threads(),
                        jobs=sorted(launcher.jobs.values(), key=lambda j: -j.started))
        try:
            job = await run_in_threadpool(launcher.start, picked)
        except SlimError as e:  # the CLI's own validation: the same message it would print
            return page(request, "new.html", status=400, title="Start a build", choices=choices(),
                        picked=picked, errors=str(e).splitlines(), max_threads=max_threads(),
                        jobs=sorted(launcher.jobs.values(), key=lambda j: -j.started))
        return RedirectResponse(f"/progress/{job.name}?job={job.id}", status_code=303)

    def api_builds(request: Request) -> Response:
        out = []
        for p in catalog.parents():
            out.append({"id": p["id"], "digest": p["digest"], "slug": p["slug"],
                        "variants": [{k: v for k, v in catalog.variant_row(e).items() if k != "dir"}
                                     for e in p["entries"]]})
        return JSONResponse(json.loads(json.dumps(out, default=str)))

    async def http_error(request: Request, exc: HTTPException) -> Response:
        return page(request, "error.html", status=exc.status_code, title=str(exc.status_code),
                    message=exc.detail)

    routes = [
        Route("/", index),
        Route("/parent/{slug}", parent),
        Route("/parent/{slug}/frontier.png", parent_frontier),
        Route("/build/{name}", build_redirect),
        Route("/build/{name}/", build),
        Route("/build/{name}/{path:path}", build_file),
        Route("/sweep/{sid}", lambda r: RedirectResponse(f"/sweep/{r.path_params['sid']}/", 307)),
        Route("/sweep/{sid}/", sweep),
        Route("/sweep/{sid}/{fname}", sweep_file),
        Route("/progress/{name}", progress_page),
        Route("/api/progress/{name}", progress_api),
        Route("/api/builds", api_builds),
        Route("/new", new_form, methods=["GET", "POST"]),
        Mount("/static", StaticFiles(directory=str(HERE / "static")), name="static"),
    ]
    @contextlib.asynccontextmanager
    async def lifespan(app):
        yield
        if launcher is not None:  # a build the studio started does not outlive it
            launcher.stop_all()

    app = Starlette(routes=routes, exception_handlers={HTTPException: http_error},
                    lifespan=lifespan)
    app.state.catalog, app.state.launcher, app.state.state_dir = catalog, launcher, state_dir
    return app
