//! Consumers of a repository and the platform each one requires, derived from plain facts the AWS
//! adapters collect.

use std::fmt;

use serde::Serialize;

use crate::platform::Platform;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, PartialOrd, Ord)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    EcsService,
    ApprunnerService,
    LambdaFunction,
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Kind::EcsService => "ECS service",
            Kind::ApprunnerService => "App Runner service",
            Kind::LambdaFunction => "Lambda function",
        })
    }
}

/// What a consumer can run, and where we learnt it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Requirement {
    Platforms {
        /// Every platform the consumer may be placed on; the image must serve each of them.
        platforms: Vec<Platform>,
        /// The setting that decided it (`runtimePlatform`, `ecs.cpu-architecture`...).
        source: &'static str,
        /// Where it runs, for people: `Fargate`, `EC2 in cluster prod`...
        runs_on: String,
        /// Lambda refuses multi-platform indexes outright.
        rejects_index: bool,
    },
    /// Could not be determined; never silently dropped.
    Unknown { reason: String },
    /// Decided by the cluster's container instances, which are looked up only for services that
    /// turn out to use the pushed repository.
    ClusterInstances { facts: Box<EcsServiceFacts> },
}

/// One service or function that pulls images from ECR.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Consumer {
    pub kind: Kind,
    pub name: String,
    pub arn: String,
    pub cluster: Option<String>,
    /// Every image reference it runs (one per container for ECS).
    pub images: Vec<String>,
    pub requirement: Requirement,
    /// App Runner services with automatic deployment pick up a pushed tag at once.
    pub auto_deploys: bool,
}

impl Consumer {
    /// A consumer (or, with name `*`, every service of a cluster) that could not be read. It names
    /// no image, so it is reported against every push of the account: never silently dropped.
    pub fn unreadable(kind: Kind, name: &str, arn: &str, cluster: Option<&str>, reason: String) -> Consumer {
        Consumer {
            kind,
            name: name.to_string(),
            arn: arn.to_string(),
            cluster: cluster.map(str::to_string),
            images: Vec::new(),
            requirement: Requirement::Unknown { reason },
            auto_deploys: false,
        }
    }
}

/// An ECS service as DescribeServices, DescribeTaskDefinition and the cluster report it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EcsServiceFacts {
    pub name: String,
    pub arn: String,
    pub cluster: String,
    /// `FARGATE`, `EC2`, `EXTERNAL`, or None when a capacity provider strategy is used.
    pub launch_type: Option<String>,
    pub capacity_providers: Vec<String>,
    pub images: Vec<String>,
    /// `runtimePlatform.cpuArchitecture` of the task definition (`X86_64`, `ARM64`).
    pub cpu_architecture: Option<String>,
    /// `runtimePlatform.operatingSystemFamily` (`LINUX`, `WINDOWS_SERVER_2022_CORE`...).
    pub os_family: Option<String>,
    pub requires_compatibilities: Vec<String>,
    /// `memberOf` expressions from the service and its task definition.
    pub placement_expressions: Vec<String>,
    /// `ecs.cpu-architecture` values of the cluster's container instances, or why unreadable.
    /// Only looked up for services that can land on container instances.
    pub cluster_architectures: Option<Result<Vec<String>, String>>,
}

impl EcsServiceFacts {
    /// Whether tasks run on Fargate rather than on container instances.
    pub fn is_fargate(&self) -> bool {
        match self.launch_type.as_deref() {
            Some(launch) => launch == "FARGATE",
            None if !self.capacity_providers.is_empty() => self
                .capacity_providers
                .iter()
                .all(|p| p == "FARGATE" || p == "FARGATE_SPOT"),
            // No launch type and no strategy: the task definition says where it can go.
            None => {
                !self.requires_compatibilities.is_empty()
                    && self.requires_compatibilities.iter().all(|c| c == "FARGATE")
            }
        }
    }

    /// Whether the architecture has to come from container instances.
    pub fn needs_cluster_architectures(&self) -> bool {
        !self.is_fargate() && self.cpu_architecture.is_none()
    }

    pub fn into_consumer(self) -> Consumer {
        let requirement = if self.needs_cluster_architectures() && self.cluster_architectures.is_none() {
            Requirement::ClusterInstances {
                facts: Box::new(self.clone()),
            }
        } else {
            self.requirement()
        };
        Consumer {
            kind: Kind::EcsService,
            name: self.name,
            arn: self.arn,
            cluster: Some(self.cluster),
            images: self.images,
            requirement,
            auto_deploys: false,
        }
    }

    /// The requirement from these facts; container-instance architectures must be filled in for
    /// services that need them.
    pub fn requirement(&self) -> Requirement {
        let os = match os_of_family(self.os_family.as_deref()) {
            Ok(os) => os,
            Err(reason) => return Requirement::Unknown { reason },
        };
        let fargate = self.is_fargate();
        let runs_on = if fargate {
            "Fargate".to_string()
        } else {
            let launch = self.launch_type.as_deref().unwrap_or("EC2");
            format!("{launch} in cluster {}", self.cluster)
        };
        if let Some(cpu) = &self.cpu_architecture {
            return match arch_of_ecs(cpu) {
                Some(arch) => Requirement::Platforms {
                    platforms: vec![os.with_arch(arch)],
                    source: "runtimePlatform",
                    runs_on,
                    rejects_index: false,
                },
                None => Requirement::Unknown {
                    reason: format!("task definition has unknown runtimePlatform.cpuArchitecture {cpu:?}"),
                },
            };
        }
        if fargate {
            // Fargate runs x86-64 unless the task definition asks for ARM64.
            return Requirement::Platforms {
                platforms: vec![os.with_arch("amd64")],
                source: "Fargate default (no runtimePlatform)",
                runs_on,
                rejects_index: false,
            };
        }
        let instances = match &self.cluster_architectures {
            Some(Ok(archs)) if !archs.is_empty() => archs,
            Some(Ok(_)) | None => {
                return Requirement::Unknown {
                    reason: format!(
                        "cluster {} has no container instances to read ecs.cpu-architecture from, and the task definition sets no runtimePlatform",
                        self.cluster
                    ),
                }
            }
            Some(Err(reason)) => return Requirement::Unknown { reason: reason.clone() },
        };
        let mut archs: Vec<String> = instances.iter().map(|a| a.to_ascii_lowercase()).collect();
        archs.sort();
        archs.dedup();
        for expression in &self.placement_expressions {
            archs.retain(|arch| placement_allows(expression, arch));
        }
        if archs.is_empty() {
            return Requirement::Unknown {
                reason: format!(
                    "placement constraints leave no container instance architecture in cluster {}",
                    self.cluster
                ),
            };
        }
        let mut platforms = Vec::new();
        for arch in &archs {
            match arch_of_ecs(arch) {
                Some(arch) => platforms.push(os.with_arch(arch)),
                None => {
                    return Requirement::Unknown {
                        reason: format!("container instance reports unknown ecs.cpu-architecture {arch:?}"),
                    }
                }
            }
        }
        Requirement::Platforms {
            platforms,
            source: "ecs.cpu-architecture",
            runs_on,
            rejects_index: false,
        }
    }
}

/// The operating-system half of a platform, waiting for its architecture.
struct Os {
    name: &'static str,
    version: Option<&'static str>,
}

impl Os {
    fn with_arch(&self, arch: &str) -> Platform {
        Platform::new(self.name, arch, None).with_os_version(self.version)
    }
}

fn os_of_family(family: Option<&str>) -> Result<Os, String> {
    let windows = |version| {
        Ok(Os {
            name: "windows",
            version: Some(version),
        })
    };
    match family {
        None | Some("LINUX") => Ok(Os {
            name: "linux",
            version: None,
        }),
        Some("WINDOWS_SERVER_2016_FULL") => windows("10.0.14393"),
        Some("WINDOWS_SERVER_2019_FULL" | "WINDOWS_SERVER_2019_CORE") => windows("10.0.17763"),
        Some("WINDOWS_SERVER_2004_CORE") => windows("10.0.19041"),
        Some("WINDOWS_SERVER_20H2_CORE") => windows("10.0.19042"),
        Some("WINDOWS_SERVER_2022_FULL" | "WINDOWS_SERVER_2022_CORE") => windows("10.0.20348"),
        Some("WINDOWS_SERVER_2025_FULL" | "WINDOWS_SERVER_2025_CORE") => windows("10.0.26100"),
        Some(other) => Err(format!(
            "task definition has unknown runtimePlatform.operatingSystemFamily {other:?}"
        )),
    }
}

/// ECS spells architectures `X86_64`/`ARM64` in task definitions and `x86_64`/`arm64` on instances.
fn arch_of_ecs(arch: &str) -> Option<&'static str> {
    match arch.to_ascii_lowercase().as_str() {
        "x86_64" => Some("amd64"),
        "arm64" => Some("arm64"),
        _ => None,
    }
}

const ARCH_ATTRIBUTE: &str = "attribute:ecs.cpu-architecture";

/// Evaluates the `ecs.cpu-architecture` terms of a cluster query expression for one architecture.
/// Terms on other attributes cannot exclude an architecture, so they count as satisfied.
pub fn placement_allows(expression: &str, arch: &str) -> bool {
    let lowered = expression.to_ascii_lowercase();
    lowered
        .split(" or ")
        .any(|conjunction| conjunction.split(" and ").all(|term| term_allows(term, arch)))
}

fn term_allows(term: &str, arch: &str) -> bool {
    let term = term.trim().trim_start_matches('(').trim_end_matches(')').trim();
    let Some(rest) = term.strip_prefix(ARCH_ATTRIBUTE) else {
        return true;
    };
    let rest = rest.trim();
    let (negated, values) = if let Some(v) = rest.strip_prefix("not_in") {
        (true, v)
    } else if let Some(v) = rest.strip_prefix("in") {
        (false, v)
    } else if let Some(v) = rest
        .strip_prefix("!=")
        .or_else(|| rest.strip_prefix("not_equals"))
    {
        (true, v)
    } else if let Some(v) = rest.strip_prefix("==").or_else(|| rest.strip_prefix("equals")) {
        (false, v)
    } else {
        return true;
    };
    let listed = values
        .trim()
        .trim_start_matches('[')
        .trim_end_matches(']')
        .split(',')
        .any(|v| v.trim().trim_matches(|c| c == '"' || c == '\'') == arch);
    listed != negated
}

/// An App Runner service with an ECR image source.
pub fn apprunner_service(name: &str, arn: &str, image: &str, auto_deploys: bool) -> Consumer {
    Consumer {
        kind: Kind::ApprunnerService,
        name: name.to_string(),
        arn: arn.to_string(),
        cluster: None,
        images: vec![image.to_string()],
        // App Runner offers x86-64 compute only.
        requirement: Requirement::Platforms {
            platforms: vec![Platform::linux("amd64")],
            source: "App Runner (x86-64 only)",
            runs_on: "App Runner".into(),
            rejects_index: false,
        },
        auto_deploys,
    }
}

/// A Lambda function of package type Image.
pub fn lambda_function(name: &str, arn: &str, image: &str, architectures: &[String]) -> Consumer {
    let requirement = match architectures.first().map(String::as_str).unwrap_or("x86_64") {
        arch @ ("x86_64" | "arm64") => {
            let platform = Platform::linux(arch_of_ecs(arch).unwrap_or("amd64"));
            Requirement::Platforms {
                platforms: vec![platform],
                source: "Lambda Architectures",
                runs_on: format!("Lambda {arch}"),
                rejects_index: true,
            }
        }
        other => Requirement::Unknown {
            reason: format!("function reports unknown architecture {other:?}"),
        },
    };
    Consumer {
        kind: Kind::LambdaFunction,
        name: name.to_string(),
        arn: arn.to_string(),
        cluster: None,
        images: vec![image.to_string()],
        requirement,
        auto_deploys: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn service() -> EcsServiceFacts {
        EcsServiceFacts {
            name: "checkout".into(),
            arn: "arn:aws:ecs:us-east-1:123456789012:service/prod/checkout".into(),
            cluster: "prod".into(),
            images: vec!["123456789012.dkr.ecr.us-east-1.amazonaws.com/web:latest".into()],
            ..Default::default()
        }
    }

    fn platforms(facts: EcsServiceFacts) -> Vec<String> {
        match facts.into_consumer().requirement {
            Requirement::Platforms { platforms, .. } => platforms.iter().map(ToString::to_string).collect(),
            Requirement::Unknown { reason } => vec![format!("unknown: {reason}")],
            Requirement::ClusterInstances { .. } => vec!["pending".into()],
        }
    }

    #[test]
    fn fargate_without_runtime_platform_is_amd64() {
        let facts = EcsServiceFacts {
            launch_type: Some("FARGATE".into()),
            ..service()
        };
        assert_eq!(platforms(facts), ["linux/amd64"]);
        let spot = EcsServiceFacts {
            capacity_providers: vec!["FARGATE_SPOT".into()],
            ..service()
        };
        assert_eq!(platforms(spot), ["linux/amd64"]);
    }

    #[test]
    fn runtime_platform_wins() {
        let facts = EcsServiceFacts {
            launch_type: Some("FARGATE".into()),
            cpu_architecture: Some("ARM64".into()),
            ..service()
        };
        assert_eq!(platforms(facts), ["linux/arm64"]);
        let windows = EcsServiceFacts {
            launch_type: Some("FARGATE".into()),
            cpu_architecture: Some("X86_64".into()),
            os_family: Some("WINDOWS_SERVER_2022_CORE".into()),
            ..service()
        };
        assert_eq!(platforms(windows), ["windows(10.0.20348)/amd64"]);
    }

    #[test]
    fn ec2_uses_cluster_instances_narrowed_by_constraints() {
        let mixed = EcsServiceFacts {
            launch_type: Some("EC2".into()),
            cluster_architectures: Some(Ok(vec!["x86_64".into(), "arm64".into(), "arm64".into()])),
            ..service()
        };
        assert!(mixed.needs_cluster_architectures());
        assert_eq!(platforms(mixed.clone()), ["linux/arm64", "linux/amd64"]);
        let pinned = EcsServiceFacts {
            placement_expressions: vec!["attribute:ecs.cpu-architecture == arm64".into()],
            ..mixed.clone()
        };
        assert_eq!(platforms(pinned), ["linux/arm64"]);
        let excluded = EcsServiceFacts {
            placement_expressions: vec![
                "attribute:ecs.cpu-architecture != arm64 and attribute:ecs.instance-type =~ m5.*".into(),
            ],
            ..mixed
        };
        assert_eq!(platforms(excluded), ["linux/amd64"]);
    }

    #[test]
    fn capacity_provider_on_asg_reads_instances() {
        let graviton = EcsServiceFacts {
            capacity_providers: vec!["graviton-asg".into()],
            cluster_architectures: Some(Ok(vec!["arm64".into()])),
            ..service()
        };
        assert_eq!(platforms(graviton), ["linux/arm64"]);
    }

    #[test]
    fn undeterminable_requirements_are_unknown_with_reason() {
        let empty = EcsServiceFacts {
            launch_type: Some("EC2".into()),
            cluster_architectures: Some(Ok(vec![])),
            ..service()
        };
        assert!(platforms(empty)[0].contains("has no container instances"));
        let denied = EcsServiceFacts {
            launch_type: Some("EXTERNAL".into()),
            cluster_architectures: Some(Err("access denied on cluster prod".into())),
            ..service()
        };
        assert_eq!(platforms(denied), ["unknown: access denied on cluster prod"]);
    }

    #[test]
    fn placement_expression_forms() {
        assert!(placement_allows(
            "attribute:ecs.cpu-architecture in [arm64, x86_64]",
            "arm64"
        ));
        assert!(!placement_allows(
            "attribute:ecs.cpu-architecture not_in [arm64]",
            "arm64"
        ));
        assert!(placement_allows(
            "attribute:ecs.cpu-architecture == x86_64 or attribute:ecs.cpu-architecture == arm64",
            "arm64"
        ));
        assert!(placement_allows(
            "attribute:ecs.availability-zone == us-east-1a",
            "arm64"
        ));
    }

    #[test]
    fn lambda_and_apprunner_requirements() {
        let f = lambda_function("resize", "arn:f", "img", &["arm64".to_string()]);
        assert!(matches!(
            f.requirement,
            Requirement::Platforms {
                rejects_index: true,
                ..
            }
        ));
        let s = apprunner_service("shop", "arn:s", "img", true);
        let Requirement::Platforms { platforms, .. } = s.requirement else {
            panic!()
        };
        assert_eq!(platforms, vec![Platform::linux("amd64")]);
    }
}
