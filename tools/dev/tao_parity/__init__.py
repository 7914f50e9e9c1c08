"""The pieces of tools/dev/make_tao_parity_fixture.py, one concept per module."""
