"""A small BPMN 2.0 process runtime: model, engine, expressions and use cases."""
