"""The HTTP limit: Flask's hello world returning a small JSON body, served exactly as the IdP is
(``gunicorn -c deploy/gunicorn.conf.py bench.hello:app``)."""

from flask import Flask, jsonify

app = Flask(__name__)


@app.get("/")
def hello():
    return jsonify(hello="world")
