from .cfg import load_cfg

settings = load_cfg("app.toml")
