"""Look inside a model: attention data for notebooks and self-contained HTML views.

`attention.py` collects and aggregates the attention; `html.py` writes the offline page;
`view.py` loads a checkpoint and writes its page for one sentence;
`assets/` holds the JavaScript and CSS that both the page and the web app (`hanformer serve`) use.
"""
