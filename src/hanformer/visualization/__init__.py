"""Look inside a model: attention data for notebooks and self-contained HTML views.

`attention.py` collects and aggregates the attention; `html.py` writes the offline page;
`assets/` holds the JavaScript and CSS that both the page and the web app (`hanformer serve`) use.
"""
