"""One TaskConfig per model or explainer; ``--conf models all`` (or a comma list of these names) enables them.

main.py finds every concrete TaskConfig subclass in this package (the shared skeleton,
`lib/config_base.ExplanationConfig`, lives outside it), names it after its module
(``explain_rex.py`` -> ``explain_rex``) and asks it for its infer task.
"""
