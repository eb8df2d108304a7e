"""Model builders: BERT for sequence classification (`flow.models.bert`) and the MLP (`flow.models.mlp`)."""
