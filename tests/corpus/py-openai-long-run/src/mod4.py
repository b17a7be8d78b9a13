def f4(x):
    # TODO: handle None
    return x + 4
