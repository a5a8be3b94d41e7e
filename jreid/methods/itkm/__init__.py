"""ITKM: the method (method), what each clustering round recomputes (rounds), its training phases (phases)."""
