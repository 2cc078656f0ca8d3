"""Size a request for LUMI-G from throughput measured there at two job sizes.

    python examples/size_request.py

The figures are an illustration (a 3D U-Net-like workload: 90 epochs of 1.2M samples, 3 seeds);
replace them with your own measurements (`python -m benchmarks`, or your training loop's
samples/s at each job size, with the P10 and P90 of its step times).
"""

import aifsdk

measured = [
    aifsdk.Measurement(devices=8, items_per_s=1000, p10=950, p90=1040, site="lumi-g", source="illustration"),
    aifsdk.Measurement(devices=16, items_per_s=1900, p10=1800, p90=1960, site="lumi-g", source="illustration"),
]
request = aifsdk.size(measured, work=90 * 1.2e6, runs=3, site="lumi-g")
print(request.text())
print()
print(request.table())
