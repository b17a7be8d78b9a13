def f1(x):
    # TODO: handle None
    return x + 1
