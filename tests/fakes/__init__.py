"""Fakes of outside systems that tests run the real client code against."""
