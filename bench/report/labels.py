"""The report's words in Spanish (the lab's language under the NTD) and English."""
from __future__ import annotations

LABELS: dict[str, dict[str, str]] = {
    "es": {
        "title": "Informe de ensayo de conformidad SMMC", "lab": "Laboratorio", "station": "Estación",
        "operator": "Operador", "run": "Ejecución", "started": "Inicio", "finished": "Fin",
        "outcome": "Resultado global", "meter": "Medidor", "identity": "Identidad leída del medidor",
        "profile": "Perfil", "equipment": "Equipos", "calibration_due": "Vence calibración",
        "software": "Software y huellas", "bench_file": "Archivo de banco", "verdicts": "Veredictos por aspecto y artículo",
        "aspect": "Aspecto", "article": "Artículo", "test": "Ensayo", "verdict": "Veredicto", "diagnosis": "Diagnóstico",
        "measurements": "Mediciones", "value": "Valor", "limit": "Límite", "unit": "Unidad", "provisional": "provisional",
        "steps": "Pasos del caso de uso", "traces": "Trazas", "plots": "Gráficos", "signature": "Firma del responsable",
        "mutant": "Mutante (validación del método)", "clock_before": "antes", "clock_after": "después",
        "tolerance": "tolerancia", "against_limits": "Mediciones respecto de su límite", "interrupted": "interrumpida",
        "none": "ninguno", "dirty": "código con cambios sin confirmar",
    },
    "en": {
        "title": "SMMC conformance test report", "lab": "Laboratory", "station": "Station", "operator": "Operator",
        "run": "Run", "started": "Started", "finished": "Finished", "outcome": "Overall outcome", "meter": "Meter",
        "identity": "Identity read from the meter", "profile": "Profile", "equipment": "Equipment",
        "calibration_due": "Calibration due", "software": "Software and hashes", "bench_file": "Bench file",
        "verdicts": "Verdicts by aspect and article", "aspect": "Aspect", "article": "Article", "test": "Test",
        "verdict": "Verdict", "diagnosis": "Diagnosis", "measurements": "Measurements", "value": "Value",
        "limit": "Limit", "unit": "Unit", "provisional": "provisional", "steps": "Use-case steps", "traces": "Traces",
        "plots": "Plots", "signature": "Signature of the person responsible", "mutant": "Mutant (method validation)",
        "clock_before": "before", "clock_after": "after", "tolerance": "tolerance",
        "against_limits": "Measurements against their limits", "interrupted": "interrupted", "none": "none",
        "dirty": "code with uncommitted changes",
    },
}
