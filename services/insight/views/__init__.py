"""Read side: conversations partners browse and the insights drafted from them."""
