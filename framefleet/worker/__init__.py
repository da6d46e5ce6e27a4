"""framefleet.worker"""
