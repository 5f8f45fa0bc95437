# The rule engine's Airflow image: Airflow 3.3.2's official image, our pinned requirements (the
# Celery provider among them) and the project. docker-compose.yaml builds it for every Airflow
# service; tests/cluster/test_dockerfile.py runs the install step below in a fresh virtualenv,
# since no Docker engine runs on the development machines.
FROM apache/airflow:3.3.2-python3.11

ENV RULE_ENGINE_HOME=/opt/rule-engine

# Requirements first: this layer is rebuilt only when the pins change.
COPY --chown=airflow:0 requirements.txt ${RULE_ENGINE_HOME}/requirements.txt
RUN pip install --no-cache-dir -r ${RULE_ENGINE_HOME}/requirements.txt

# The project: the packages (rule_compiler, rule_engine), the DAG loader, the plugin, the example
# definitions and the scripts the init service runs. The UI bundle is committed (plugins/rule_engine/ui_dist).
COPY --chown=airflow:0 . ${RULE_ENGINE_HOME}
RUN pip install --no-cache-dir --no-deps ${RULE_ENGINE_HOME}

WORKDIR ${RULE_ENGINE_HOME}
