//! ECS: every service in every cluster, its task definition, and container-instance architectures.
//!
//! Call budget per scan: ListClusters pages + ListServices pages per cluster + one DescribeServices
//! per 10 services + one DescribeTaskDefinition per distinct task definition. Container-instance
//! architectures are read later, once per cluster, only for services that use the pushed repository.

use std::collections::{BTreeSet, HashMap};

use aws_sdk_ecs::types::{Service, TargetType, TaskDefinition};
use aws_sdk_ecs::Client;
use futures_util::future::BoxFuture;
use futures_util::{stream, FutureExt, StreamExt};

use super::{op, AwsError, ErrorKind, Limiter};
use crate::config::ConsumerKind;
use crate::consumer::{Consumer, EcsServiceFacts, Kind};
use crate::validate::{ClusterArchitectures, ConsumerFinder, Found};

/// DescribeServices takes at most 10 services per call.
const DESCRIBE_SERVICES_BATCH: usize = 10;
pub const ARCHITECTURE_ATTRIBUTE: &str = "ecs.cpu-architecture";

pub struct Ecs {
    client: Client,
    limiter: Limiter,
}

/// What a task definition contributes to its services.
#[derive(Clone, Default)]
struct TaskDefinitionFacts {
    images: Vec<String>,
    cpu_architecture: Option<String>,
    os_family: Option<String>,
    requires_compatibilities: Vec<String>,
    placement_expressions: Vec<String>,
}

/// A service before its task definition is known.
struct ServiceFacts {
    facts: EcsServiceFacts,
    task_definition: String,
}

impl Ecs {
    pub fn new(client: Client, limiter: Limiter) -> Ecs {
        Ecs { client, limiter }
    }

    async fn find_all(&self) -> Result<Found, AwsError> {
        let clusters = self.list_clusters().await?;
        let per_cluster: Vec<Result<Result<Vec<ServiceFacts>, Consumer>, AwsError>> = stream::iter(clusters)
            .map(|cluster| self.cluster_services(cluster))
            .buffer_unordered(self.limiter.width())
            .collect()
            .await;
        let mut found = Found::default();
        let mut services = Vec::new();
        for result in per_cluster {
            match result? {
                Ok(list) => services.extend(list),
                Err(unreadable) => found.consumers.push(unreadable),
            }
        }

        let distinct: BTreeSet<String> = services.iter().map(|s| s.task_definition.clone()).collect();
        let described: Vec<(String, Result<TaskDefinitionFacts, AwsError>)> = stream::iter(distinct)
            .map(|arn| async move {
                let result = self.describe_task_definition(&arn).await;
                (arn, result)
            })
            .buffer_unordered(self.limiter.width())
            .collect()
            .await;
        let mut task_definitions = HashMap::new();
        for (arn, result) in described {
            match result {
                Ok(facts) => {
                    task_definitions.insert(arn, Ok(facts));
                }
                Err(e) if e.is_retryable() => return Err(e),
                Err(e) => {
                    task_definitions.insert(arn, Err(e.to_string()));
                }
            }
        }

        for ServiceFacts {
            mut facts,
            task_definition,
        } in services
        {
            match task_definitions.get(&task_definition) {
                Some(Ok(td)) => {
                    facts.images = td.images.clone();
                    facts.cpu_architecture = td.cpu_architecture.clone();
                    facts.os_family = td.os_family.clone();
                    facts.requires_compatibilities = td.requires_compatibilities.clone();
                    facts
                        .placement_expressions
                        .extend(td.placement_expressions.iter().cloned());
                    found.consumers.push(facts.into_consumer());
                }
                Some(Err(reason)) => {
                    let reason = format!("task definition {task_definition} unreadable: {reason}");
                    found.consumers.push(Consumer::unreadable(
                        Kind::EcsService,
                        &facts.name,
                        &facts.arn,
                        Some(&facts.cluster),
                        reason,
                    ));
                }
                None => {}
            }
        }
        Ok(found)
    }

    async fn list_clusters(&self) -> Result<Vec<String>, AwsError> {
        let _permit = self.limiter.acquire().await;
        let mut pages = self
            .client
            .list_clusters()
            .max_results(100)
            .into_paginator()
            .send();
        let mut arns = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| AwsError::from_sdk(op::ECS_LIST_CLUSTERS, e))?;
            arns.extend(page.cluster_arns().iter().cloned());
        }
        Ok(arns)
    }

    /// The services of one cluster, or a single "unknown" consumer standing for all of them when
    /// the cluster cannot be read (access denied on that cluster).
    async fn cluster_services(
        &self,
        cluster_arn: String,
    ) -> Result<Result<Vec<ServiceFacts>, Consumer>, AwsError> {
        let cluster = name_from_arn(&cluster_arn).to_string();
        let unreadable = |e: AwsError| {
            let reason = format!("cannot read services of cluster {cluster}: {e}");
            Consumer::unreadable(Kind::EcsService, "*", &cluster_arn, Some(&cluster), reason)
        };
        let arns = match self.list_services(&cluster_arn).await {
            Ok(arns) => arns,
            Err(e) if e.kind == ErrorKind::NotFound => return Ok(Ok(Vec::new())),
            Err(e) if e.is_retryable() => return Err(e),
            Err(e) => return Ok(Err(unreadable(e))),
        };
        let batches: Vec<Vec<String>> = arns
            .chunks(DESCRIBE_SERVICES_BATCH)
            .map(<[String]>::to_vec)
            .collect();
        let described: Vec<Result<Vec<Service>, AwsError>> = stream::iter(batches)
            .map(|batch| self.describe_services(&cluster_arn, batch))
            .buffer_unordered(self.limiter.width())
            .collect()
            .await;
        let mut services = Vec::new();
        for result in described {
            match result {
                Ok(batch) => services.extend(batch),
                Err(e) if e.is_retryable() => return Err(e),
                Err(e) => return Ok(Err(unreadable(e))),
            }
        }
        Ok(Ok(services
            .iter()
            .filter(|s| s.status() != Some("INACTIVE"))
            .filter_map(|s| service_facts(s, &cluster))
            .collect()))
    }

    async fn list_services(&self, cluster_arn: &str) -> Result<Vec<String>, AwsError> {
        let _permit = self.limiter.acquire().await;
        let mut pages = self
            .client
            .list_services()
            .cluster(cluster_arn)
            .max_results(100)
            .into_paginator()
            .send();
        let mut arns = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| AwsError::from_sdk(op::ECS_LIST_SERVICES, e))?;
            arns.extend(page.service_arns().iter().cloned());
        }
        Ok(arns)
    }

    async fn describe_services(
        &self,
        cluster_arn: &str,
        arns: Vec<String>,
    ) -> Result<Vec<Service>, AwsError> {
        let _permit = self.limiter.acquire().await;
        let output = self
            .client
            .describe_services()
            .cluster(cluster_arn)
            .set_services(Some(arns))
            .send()
            .await
            .map_err(|e| AwsError::from_sdk(op::ECS_DESCRIBE_SERVICES, e))?;
        Ok(output.services().to_vec())
    }

    async fn describe_task_definition(&self, arn: &str) -> Result<TaskDefinitionFacts, AwsError> {
        let _permit = self.limiter.acquire().await;
        let output = self
            .client
            .describe_task_definition()
            .task_definition(arn)
            .send()
            .await
            .map_err(|e| AwsError::from_sdk(op::ECS_DESCRIBE_TASK_DEFINITION, e))?;
        Ok(output
            .task_definition()
            .map(task_definition_facts)
            .unwrap_or_default())
    }

    async fn list_architectures(&self, cluster: &str) -> Result<Vec<String>, AwsError> {
        let _permit = self.limiter.acquire().await;
        let mut pages = self
            .client
            .list_attributes()
            .cluster(cluster)
            .target_type(TargetType::ContainerInstance)
            .attribute_name(ARCHITECTURE_ATTRIBUTE)
            .max_results(100)
            .into_paginator()
            .send();
        let mut archs = BTreeSet::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| AwsError::from_sdk(op::ECS_LIST_ATTRIBUTES, e))?;
            archs.extend(
                page.attributes()
                    .iter()
                    .filter_map(|a| a.value())
                    .map(str::to_string),
            );
        }
        Ok(archs.into_iter().collect())
    }
}

fn service_facts(service: &Service, cluster: &str) -> Option<ServiceFacts> {
    let task_definition = service.task_definition()?.to_string();
    let name = service.service_name().unwrap_or_default().to_string();
    Some(ServiceFacts {
        facts: EcsServiceFacts {
            arn: service.service_arn().unwrap_or_default().to_string(),
            name,
            cluster: cluster.to_string(),
            launch_type: service.launch_type().map(|l| l.as_str().to_string()),
            capacity_providers: service
                .capacity_provider_strategy()
                .iter()
                .map(|item| item.capacity_provider().to_string())
                .collect(),
            placement_expressions: service
                .placement_constraints()
                .iter()
                .filter_map(|c| c.expression())
                .map(str::to_string)
                .collect(),
            ..Default::default()
        },
        task_definition,
    })
}

fn task_definition_facts(td: &TaskDefinition) -> TaskDefinitionFacts {
    let platform = td.runtime_platform();
    TaskDefinitionFacts {
        images: td
            .container_definitions()
            .iter()
            .filter_map(|c| c.image())
            .map(str::to_string)
            .collect(),
        cpu_architecture: platform
            .and_then(|p| p.cpu_architecture())
            .map(|a| a.as_str().to_string()),
        os_family: platform
            .and_then(|p| p.operating_system_family())
            .map(|f| f.as_str().to_string()),
        requires_compatibilities: td
            .requires_compatibilities()
            .iter()
            .map(|c| c.as_str().to_string())
            .collect(),
        placement_expressions: td
            .placement_constraints()
            .iter()
            .filter_map(|c| c.expression())
            .map(str::to_string)
            .collect(),
    }
}

/// `arn:aws:ecs:us-east-1:123456789012:cluster/prod` → `prod`.
fn name_from_arn(arn: &str) -> &str {
    arn.rsplit('/').next().unwrap_or(arn)
}

impl ConsumerFinder for Ecs {
    fn kind(&self) -> ConsumerKind {
        ConsumerKind::Ecs
    }

    fn find(&self) -> BoxFuture<'_, Result<Found, AwsError>> {
        self.find_all().boxed()
    }
}

impl ClusterArchitectures for Ecs {
    fn architectures<'a>(&'a self, cluster: &'a str) -> BoxFuture<'a, Result<Vec<String>, AwsError>> {
        self.list_architectures(cluster).boxed()
    }
}
