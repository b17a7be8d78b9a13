def f6(x):
    # TODO: handle None
    return x + 6
