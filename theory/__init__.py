"""theory: the assumptions and bounds of the unrolled-GD construction, symbolic (sympy) and numeric."""
