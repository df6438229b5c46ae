-- One server, three databases: ticks (tickml), Dagster's storage and MLflow's backend store.
CREATE DATABASE dagster;
CREATE DATABASE mlflow;
