def f3(x):
    # TODO: handle None
    return x + 3
