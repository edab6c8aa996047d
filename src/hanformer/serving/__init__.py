"""The local web app of `hanformer serve`: a page to try a checkpoint and a JSON API.

    config.py      ServeConfig: address, request limits, threads
    engine.py      InferenceEngine: the loaded checkpoint answering in plain Python (no HTTP)
    translation.py TranslationService: translation models' lines and cross-attention (for the engine)
    errors.py      FieldError and the refused-answer-size wording the inference side shares
    app.py         create_app()/serve(): FastAPI routes, request validation, 4xx errors naming the field
    security.py    RequestGuard: only this server's host names (DNS rebinding) and JSON POST bodies
    hosts.py       host names as settings and Host headers write them (no web framework needed)
    streaming.py   server-sent events fed by a worker thread (text generation)
    static/        the page (index.html, page.js; generate.js for GPT checkpoints, translate.js
                   for translation models)
"""
