"""AdmissionReview v1: models, response helpers and the handlers that apply the rules."""
