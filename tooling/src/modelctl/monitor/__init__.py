"""`modelctl monitor` (issue 22): drift and quality of a live model from its prediction log.

``logs`` reads the Parquet partitions the service wrote (``modelkit.predlog``), ``reference`` the sample its model
version kept of its training data, ``drift`` compares them column by column with SciPy (two-sample
Kolmogorov-Smirnov for numbers, chi-square for categories, or PSI), ``quality`` joins ground truth that arrived
later, ``report`` writes the table, HTML, markdown, step summary and the JSON record in the state store, and
``run`` composes them into one verdict. SciPy rather than Evidently: the tests are a few well-known functions of a
small, well-kept library already in the tooling environment, where Evidently brings a large dependency stack.
"""
