"""Published Kodak rate-distortion points of neural-field image codecs, for context in experiments.kodak.

Every curve is an average over all 24 Kodak images: mean bits per pixel and mean per-image RGB PSNR (dB),
the convention of ../shared/reference/kodak and of experiments.kodak.

Provenance (read this before citing): none of these numbers was read off a plot by us. All four curves are
copied from the results table that the C3 authors publish with their code, google-deepmind/c3_neural_compression,
file baselines/kodak.py (Apache-2.0; commit ce70560e8219655e76e8d5bb78b60af776d72318), where each entry names
its own source, repeated below. Values are rounded to 4 decimals (bpp) and 3 decimals (dB). We include only these
four methods and only the points listed there; nothing is interpolated or extrapolated.
"""

from __future__ import annotations

PUBLISHED = {
    "COIN": {
        # Dupont, Goliński, Alizadeh, Teh, Doucet, "COIN: COmpression with Implicit Neural representations",
        # ICLR 2021 workshop on neural compression, arXiv:2103.03123. Source named by C3: the COIN authors'
        # results.json in github.com/EmilienDupont/coin (accessed 10/08/23).
        "citation": "Dupont et al., COIN, arXiv:2103.03123 (2021)",
        "bpp": (0.0368, 0.0736, 0.1604, 0.3074, 0.6109, 1.209),
        "psnr": (22.408, 23.205, 24.641, 26.412, 28.408, 30.644),
    },
    "COIN++": {
        # Dupont, Loya, Alizadeh, Goliński, Teh, Doucet, "COIN++: Neural compression across modalities",
        # TMLR 2022, arXiv:2201.12904. Source named by C3: results/kodak/coinpp.json in
        # github.com/EmilienDupont/coinpp (accessed 10/08/23). Meta-learned on a training set of images.
        "citation": "Dupont et al., COIN++, TMLR 2022, arXiv:2201.12904",
        "bpp": (0.0666, 0.1325, 0.2659, 0.3983, 0.5366),
        "psnr": (23.682, 24.927, 26.143, 27.032, 27.798),
    },
    "Strümpler et al.": {
        # Strümpler, Postels, Yang, Van Gool, Tombari, "Implicit neural representations for image compression",
        # ECCV 2022, arXiv:2112.04267 (entry "SPY" in C3's table). Source named by C3: "obtained from paper
        # authors". Meta-learned initialisation, quantization-aware retraining, entropy coding.
        "citation": "Strümpler et al., ECCV 2022, arXiv:2112.04267",
        "bpp": (0.0832, 0.1546, 0.2489, 0.7845),
        "psnr": (25.560, 27.019, 28.280, 32.139),
    },
    "C3": {
        # Kim, Bauer, Theis, Schwarz, Dupont, "C3: High-performance and low-complexity neural compression from a
        # single image or video", CVPR 2024, arXiv:2312.02753. Source: the C3 authors' own experiments (their
        # non-adaptive "C3" entry).
        "citation": "Kim et al., C3, CVPR 2024, arXiv:2312.02753",
        "bpp": (0.0926, 0.1339, 0.1532, 0.2025, 0.2318, 0.2761, 0.3506, 0.5144, 0.5785, 0.7286, 0.8067, 0.9140,
                1.0800, 1.4093),
        "psnr": (27.065, 28.450, 28.959, 30.032, 30.594, 31.336, 32.395, 34.368, 35.016, 36.384, 37.037, 37.845,
                 38.984, 40.847),
    },
}
