"""`bench profile`: one interoperability-profile document per aspect, from the catalogue (the same
source the tests cite), with the latest verdicts: Markdown (Mermaid diagrams as source), HTML (the
diagrams rendered to SVG by mermaid-cli where installed), and an XML export in the shape of
IEC 62559-3 for a utility's use-case repository."""
from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path

from markdown_it import MarkdownIt
from pydantic import BaseModel

from smmc_bench.profile.base import Limit
from smmc_bench.profile.meter import MeterProfile
from smmc_bench.report.record import RunRecord
from smmc_bench.usecases import LANGUAGES, Actor, UseCase

MERMAID_BLOCK = re.compile(r"```mermaid\n(.*?)\n```", re.S)

WORDS = {
    "es": {"profile": "Perfil de interoperabilidad", "aspect": "Aspecto", "articles": "Artículos", "scope": "Alcance y objetivos",
           "narrative": "Narrativa", "actors": "Actores y componentes", "components": "Diagrama de componentes",
           "assumptions": "Supuestos y prerrequisitos", "scenario": "Escenario", "trigger": "Evento disparador",
           "pre": "Precondiciones", "post": "Postcondiciones", "sequence": "Secuencia", "steps": "Pasos", "step": "Paso",
           "event": "Evento", "service": "Servicio", "producer": "Productor", "receiver": "Receptor",
           "information": "Información intercambiada", "requirement": "Requisito", "tests": "Ensayos que lo verifican",
           "verdict": "Último veredicto", "back_office": "paso de back-office", "statement": "Declaración del perfil (BAIOP)",
           "statement_text": "Este perfil exige del medidor los objetos y opciones siguientes y lo verifica con los ensayos listados, con los parámetros del perfil del medidor",
           "features": "Opciones declaradas", "objects": "Objetos COSEM", "limits": "Parámetros de ensayo (límites)",
           "none": "sin ejecución", "kind": "tipo", "provisional": "provisional"},
    "en": {"profile": "Interoperability profile", "aspect": "Aspect", "articles": "Articles", "scope": "Scope and objectives",
           "narrative": "Narrative", "actors": "Actors and components", "components": "Component diagram",
           "assumptions": "Assumptions and prerequisites", "scenario": "Scenario", "trigger": "Triggering event",
           "pre": "Pre-conditions", "post": "Post-conditions", "sequence": "Sequence", "steps": "Steps", "step": "Step",
           "event": "Event", "service": "Service", "producer": "Producer", "receiver": "Receiver",
           "information": "Information exchanged", "requirement": "Requirement", "tests": "Verifying tests",
           "verdict": "Last verdict", "back_office": "back-office step", "statement": "Profile statement (BAIOP)",
           "statement_text": "This profile requires of the meter the objects and options below and verifies it with the tests listed, with the meter profile's parameters",
           "features": "Declared options", "objects": "COSEM objects", "limits": "Test parameters (limits)",
           "none": "no run", "kind": "kind", "provisional": "provisional"},
}


def _limits(model: BaseModel, prefix: str = "") -> list[tuple[str, Limit]]:
    found = []
    for name in type(model).model_fields:
        value = getattr(model, name)
        path = f"{prefix}{name}"
        if isinstance(value, Limit):
            found.append((path, value))
        elif isinstance(value, BaseModel):
            found += _limits(value, path + ".")
    return found


def last_verdicts(record: RunRecord | None) -> dict[str, str]:
    """Per test name, the verdicts of the last run (several meters or links: the worst)."""
    order = {"FAIL": 3, "ERROR": 2, "SKIP": 1, "PASS": 0}
    verdicts: dict[str, str] = {}
    for test in record.tests if record else []:
        verdict = test.verdict.value
        if order[verdict] >= order.get(verdicts.get(test.name, "PASS"), 0) or test.name not in verdicts:
            verdicts[test.name] = verdict
    return verdicts


def _mermaid_id(actor: str) -> str:
    return actor.replace("-", "_")


def component_diagram(case: UseCase, actors: dict[str, Actor], lang: str) -> str:
    lines = ["flowchart LR"]
    for actor in case.actors():
        lines.append(f'  {_mermaid_id(actor)}["{actors[actor].__getattribute__(lang)}"]')
    pairs = []
    for step in case.steps():
        pair = (step.producer, step.receiver)
        if pair not in pairs:
            pairs.append(pair)
            lines.append(f"  {_mermaid_id(pair[0])} -- {step.service} --> {_mermaid_id(pair[1])}")
    return "\n".join(lines)


def sequence_diagram(scenario, actors: dict[str, Actor], lang: str) -> str:
    lines = ["sequenceDiagram"]
    seen = []
    for step in scenario.step:
        for actor in (step.producer, step.receiver):
            if actor not in seen:
                seen.append(actor)
                lines.append(f"  participant {_mermaid_id(actor)} as {actors[actor].__getattribute__(lang)}")
    for step in scenario.step:
        text = getattr(step, lang)
        lines.append(f"  {_mermaid_id(step.producer)}->>{_mermaid_id(step.receiver)}: {step.id} {step.service}: "
                     f"{text.event}".replace(";", ","))
    return "\n".join(lines)


def markdown(case: UseCase, actors: dict[str, Actor], profile: MeterProfile, verdicts: dict[str, str],
             lang: str) -> str:
    w, text = WORDS[lang], getattr(case, lang)
    out = [f"# {w['profile']} — {w['aspect']} {case.number}: {text.name}", "",
           f"**{w['articles']}**: {', '.join(case.articles)}", "", f"## {w['scope']}", "", text.scope, "",
           f"## {w['narrative']}", "", text.narrative, "", f"## {w['actors']}", ""]
    out += [f"- **{getattr(actors[a], lang)}** ({w['kind']}: {actors[a].kind})" for a in case.actors()]
    out += ["", f"### {w['components']}", "", "```mermaid", component_diagram(case, actors, lang), "```", "",
            f"## {w['assumptions']}", ""] + [f"- {a}" for a in text.assumptions] + [""]
    for scenario in case.scenario:
        s = getattr(scenario, lang)
        out += [f"## {w['scenario']} {scenario.id}: {s.name}", "", f"- **{w['trigger']}**: {s.trigger}",
                f"- **{w['pre']}**: {s.pre}", f"- **{w['post']}**: {s.post}", "", f"### {w['sequence']}", "",
                "```mermaid", sequence_diagram(scenario, actors, lang), "```", "", f"### {w['steps']}", "",
                f"| {w['step']} | {w['event']} | {w['service']} | {w['producer']} | {w['receiver']} | "
                f"{w['information']} | {w['requirement']} | {w['tests']} | {w['verdict']} |",
                "|---|---|---|---|---|---|---|---|---|"]
        for step in scenario.step:
            t = getattr(step, lang)
            tests = ", ".join(f"`{name}`" for name in step.verified_by) or f"*{w['back_office']}*: {step.back_office}"
            last = ", ".join(sorted({verdicts[n] for n in step.verified_by if n in verdicts})) or w["none"]
            out.append(f"| {step.id} | {t.event} | {step.service} | {getattr(actors[step.producer], lang)} | "
                       f"{getattr(actors[step.receiver], lang)} | {t.information} | {step.requirement} | {tests} | {last} |")
        out.append("")
    out += [f"## {w['statement']}", "", f"{w['statement_text']} ({profile.profile.name}).", "",
            f"### {w['features']}", ""]
    out += [f"- `{name}`" for name, on in sorted(profile.features.items()) if on] + ["", f"### {w['objects']}", ""]
    out += [f"- {name}: `{obis}`" for name, obis in profile.objects.model_dump().items()] + ["", f"### {w['limits']}", ""]
    for path, limit in _limits(profile):
        if limit.article in case.articles:
            mark = f" ({w['provisional']})" if limit.provisional else ""
            out.append(f"- `{path}` = {limit.value:g} {limit.unit}, art. {limit.article}{mark}")
    return "\n".join(out) + "\n"


def find_mermaid_cli() -> str | None:
    return shutil.which("mmdc")


def render_mermaid(sources: list[str], mmdc: str, chromium: str | None) -> dict[str, str]:
    """SVG of each diagram by mermaid-cli (headless Chromium underneath), all in one run: mmdc turns
    the Mermaid blocks of one Markdown file into one SVG file each. Diagrams it could not render
    are left out (their pages keep the Mermaid source)."""
    if not sources:
        return {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        (tmp / "all.md").write_text("".join(f"```mermaid\n{source}\n```\n\n" for source in sources))
        config = {"args": ["--no-sandbox"]} | ({"executablePath": chromium} if chromium else {})
        (tmp / "puppeteer.json").write_text(json.dumps(config))
        try:
            subprocess.run([mmdc, "-i", str(tmp / "all.md"), "-o", str(tmp / "out.md"), "-e", "svg",
                            "-p", str(tmp / "puppeteer.json"), "-q"], capture_output=True, text=True,
                           timeout=60 + 10 * len(sources))
        except (OSError, subprocess.TimeoutExpired):
            return {}
        rendered = {}
        for number, source in enumerate(sources, start=1):
            svg = tmp / f"out-{number}.svg"
            if svg.exists():
                rendered[source] = svg.read_text()
        return rendered


def to_html(markdown_text: str, title: str, render) -> str:
    """Markdown to a self-contained page; each Mermaid block becomes the SVG `render` gives (or
    stays as its source when no renderer is available)."""
    parser = MarkdownIt("commonmark").enable("table")
    default_fence = parser.renderer.rules.get("fence")

    def fence(renderer, tokens, idx, options, env):
        token = tokens[idx]
        if token.info.strip() == "mermaid":
            svg = render(token.content)
            if svg:
                return f'<div class="diagram">{svg}</div>\n'
            return f'<pre class="mermaid">{html.escape(token.content)}</pre>\n'
        return default_fence(tokens, idx, options, env)  # bound to the renderer already

    parser.add_render_rule("fence", fence)
    body = parser.render(markdown_text)
    style = ("body{font-family:'DejaVu Sans',Arial,sans-serif;font-size:10pt;margin:1.5em;max-width:70em}"
             "table{border-collapse:collapse}td,th{border:1px solid #bbb;padding:2px 6px;vertical-align:top}"
             "th{background:#eee}.diagram svg{max-width:100%;height:auto}")
    return (f'<!DOCTYPE html><html><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
            f"<style>{style}</style></head><body>{body}</body></html>")


def xml_export(catalogue: dict[int, UseCase], actors: dict[str, Actor], lang: str) -> str:
    """The catalogue in the shape of IEC 62559-3 (UseCaseRepository > UseCase > Actors, Scenarios,
    Steps), for a utility's use-case repository."""
    root = ET.Element("UseCaseRepository", {"language": lang, "source": "smmc-bench"})
    for case in catalogue.values():
        text = getattr(case, lang)
        uc = ET.SubElement(root, "UseCase", {"id": f"SMMC-{case.number:02d}", "name": text.name})
        ET.SubElement(uc, "Scope").text = text.scope
        ET.SubElement(uc, "Narrative").text = text.narrative
        ET.SubElement(uc, "RelatedRegulation").text = ", ".join(case.articles)
        listed = ET.SubElement(uc, "Actors")
        for actor in case.actors():
            ET.SubElement(listed, "Actor", {"id": actor, "name": getattr(actors[actor], lang), "type": actors[actor].kind})
        prerequisites = ET.SubElement(uc, "Assumptions")
        for assumption in text.assumptions:
            ET.SubElement(prerequisites, "Assumption").text = assumption
        for scenario in case.scenario:
            s = getattr(scenario, lang)
            sc = ET.SubElement(uc, "Scenario", {"id": scenario.id, "name": s.name})
            ET.SubElement(sc, "TriggeringEvent").text = s.trigger
            ET.SubElement(sc, "PreCondition").text = s.pre
            ET.SubElement(sc, "PostCondition").text = s.post
            for step in scenario.step:
                t = getattr(step, lang)
                st = ET.SubElement(sc, "Step", {"number": step.id, "service": step.service,
                                               "producer": step.producer, "receiver": step.receiver})
                ET.SubElement(st, "Event").text = t.event
                ET.SubElement(st, "InformationExchanged").text = t.information
                ET.SubElement(st, "Requirement").text = step.requirement
                for test in step.verified_by:
                    ET.SubElement(st, "VerifiedBy").text = test
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True)


def write_documents(catalogue: dict[int, UseCase], actors: dict[str, Actor], profile: MeterProfile,
                    record: RunRecord | None, out: Path, languages=LANGUAGES, html_too: bool = True,
                    chromium: str | None = None) -> list[Path]:
    verdicts = last_verdicts(record)
    documents = {(lang, case.number): markdown(case, actors, profile, verdicts, lang)
                 for lang in languages for case in catalogue.values()}
    mmdc = find_mermaid_cli()
    svgs: dict[str, str] = {}
    if html_too and mmdc is not None:
        sources = list(dict.fromkeys(block for text in documents.values()
                                     for block in MERMAID_BLOCK.findall(text)))
        svgs = render_mermaid(sources, mmdc, chromium)

    def render(source: str) -> str | None:
        return svgs.get(source.rstrip("\n"))

    written = []
    for lang in languages:
        folder = out / lang
        folder.mkdir(parents=True, exist_ok=True)
        for case in catalogue.values():
            text = documents[(lang, case.number)]
            path = folder / f"aspect{case.number:02d}.md"
            path.write_text(text, encoding="utf-8")
            written.append(path)
            if html_too:
                page = folder / f"aspect{case.number:02d}.html"
                page.write_text(to_html(text, f"{WORDS[lang]['aspect']} {case.number}", render), encoding="utf-8")
                written.append(page)
        export = folder / "use-cases.iec62559-3.xml"
        export.write_text(xml_export(catalogue, actors, lang), encoding="utf-8")
        written.append(export)
    return written
