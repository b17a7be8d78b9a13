def f2(x):
    # TODO: handle None
    return x + 2
