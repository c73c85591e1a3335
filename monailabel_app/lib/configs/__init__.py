"""One TaskConfig per model or explainer; ``--conf models all`` (or a comma list of these names) enables them.

main.py finds every direct TaskConfig subclass in this package, names it after its module
(``explain_rex.py`` -> ``explain_rex``) and asks it for its infer task.
"""
