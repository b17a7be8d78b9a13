def load_cfg(path):
    return open(path).read()
