def f5(x):
    # TODO: handle None
    return x + 5
