"""framefleet.catalog"""
