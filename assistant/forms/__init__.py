"""Service forms: fields, validators, the form loop and its policy, confirmation and submission."""
