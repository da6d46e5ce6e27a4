"""framefleet.producer"""
