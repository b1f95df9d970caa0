def pytest_configure(config):
    # tests/core/test_compile.py: torch.compile on the CPU (minutes in all); deselect with -m "not compile"
    config.addinivalue_line("markers", "compile: runs torch.compile (inductor on the CPU takes ~45 s a model)")
