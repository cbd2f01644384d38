"""Elastic Beanstalk option settings: the defaults an environment shows, the namespaces and options EB accepts,
and which changes replace the instances.

EB refuses an option it does not know with InvalidParameterValue (EB-OPTION-UNKNOWN); a change to the launch
configuration (instance type, key pair, instance profile, security groups) replaces every instance
(EB-CONFIG-REPLACES). An HTTPS listener needs a certificate (ALB-LISTENER-PORT). Only the namespaces a web-server
environment of ours can use are listed.
"""

from __future__ import annotations

from typing import Any

from moto.elasticbeanstalk.exceptions import InvalidParameterValueError

DEFAULT_OPTIONS: dict[tuple[str, str], str] = {
    ("aws:autoscaling:asg", "MinSize"): "1",
    ("aws:autoscaling:asg", "MaxSize"): "4",
    ("aws:autoscaling:launchconfiguration", "InstanceType"): "t3.micro",
    ("aws:autoscaling:launchconfiguration", "IamInstanceProfile"): "",
    ("aws:autoscaling:launchconfiguration", "EC2KeyName"): "",
    ("aws:ec2:instances", "InstanceTypes"): "t3.micro, t3.small",
    ("aws:elasticbeanstalk:environment", "EnvironmentType"): "LoadBalanced",
    ("aws:elasticbeanstalk:environment", "LoadBalancerType"): "application",
    ("aws:elasticbeanstalk:command", "DeploymentPolicy"): "AllAtOnce",
    ("aws:elasticbeanstalk:command", "BatchSizeType"): "Percentage",
    ("aws:elasticbeanstalk:command", "BatchSize"): "100",
    ("aws:elasticbeanstalk:healthreporting:system", "SystemType"): "enhanced",
    ("aws:elasticbeanstalk:environment:process:default", "Port"): "80",
    ("aws:elasticbeanstalk:environment:process:default", "Protocol"): "HTTP",
    ("aws:elasticbeanstalk:environment:process:default", "HealthCheckPath"): "/",
    ("aws:elbv2:listener:default", "ListenerEnabled"): "true",
    ("aws:elbv2:loadbalancer", "IdleTimeout"): "60",
}

# Namespaces EB knows, with the options it accepts (None: any option name, as for environment variables).
_KNOWN_NAMESPACES: dict[str, set[str] | None] = {
    "aws:autoscaling:asg": {"MinSize", "MaxSize", "Availability Zones", "Cooldown", "Custom Availability Zones",
                            "EnableCapacityRebalancing"},
    "aws:autoscaling:launchconfiguration": {"InstanceType", "IamInstanceProfile", "EC2KeyName", "SecurityGroups",
                                            "SSHSourceRestriction", "ImageId", "MonitoringInterval",
                                            "RootVolumeType", "RootVolumeSize", "DisableIMDSv1",
                                            "DisableDefaultEC2SecurityGroup"},
    "aws:autoscaling:updatepolicy:rollingupdate": {"RollingUpdateEnabled", "RollingUpdateType", "MaxBatchSize",
                                                   "MinInstancesInService", "PauseTime", "Timeout"},
    "aws:ec2:instances": {"InstanceTypes", "EnableSpot", "SpotFleetOnDemandBase",
                          "SpotFleetOnDemandAboveBasePercentage", "SpotMaxPrice", "SupportedArchitectures"},
    "aws:ec2:vpc": {"VPCId", "Subnets", "ELBSubnets", "ELBScheme", "AssociatePublicIpAddress", "DBSubnets"},
    "aws:elasticbeanstalk:application": {"Application Healthcheck URL"},
    "aws:elasticbeanstalk:application:environment": None,
    "aws:elasticbeanstalk:application:environmentsecrets": None,
    "aws:elasticbeanstalk:command": {"DeploymentPolicy", "Timeout", "BatchSizeType", "BatchSize",
                                     "IgnoreHealthCheck"},
    "aws:elasticbeanstalk:environment": {"EnvironmentType", "LoadBalancerType", "LoadBalancerIsShared",
                                         "ServiceRole"},
    "aws:elasticbeanstalk:healthreporting:system": {"SystemType", "ConfigDocument", "EnhancedHealthAuthEnabled"},
    "aws:elasticbeanstalk:cloudwatch:logs": {"StreamLogs", "DeleteOnTerminate", "RetentionInDays"},
    "aws:elasticbeanstalk:managedactions": {"ManagedActionsEnabled", "PreferredStartTime", "ServiceRoleForManagedUpdates"},
    "aws:elasticbeanstalk:managedactions:platformupdate": {"UpdateLevel", "InstanceRefreshEnabled"},
    "aws:elbv2:loadbalancer": {"AccessLogsS3Bucket", "AccessLogsS3Enabled", "AccessLogsS3Prefix", "IdleTimeout",
                               "ManagedSecurityGroup", "SecurityGroups"},
}
_PROCESS_OPTIONS = {"DeregistrationDelay", "HealthCheckInterval", "HealthCheckPath", "HealthCheckTimeout",
                    "HealthyThresholdCount", "MatcherHTTPCode", "Port", "Protocol", "StickinessEnabled",
                    "StickinessLBCookieDuration", "StickinessType", "UnhealthyThresholdCount"}
_LISTENER_OPTIONS = {"DefaultProcess", "ListenerEnabled", "Protocol", "Rules", "SSLCertificateArns", "SSLPolicy"}
_RULE_OPTIONS = {"HostHeaders", "PathPatterns", "Priority", "Process"}

# Changing any of these replaces the instances, as a launch-configuration change does in AWS.
REPLACING_OPTIONS = {
    ("aws:autoscaling:launchconfiguration", "InstanceType"),
    ("aws:autoscaling:launchconfiguration", "EC2KeyName"),
    ("aws:autoscaling:launchconfiguration", "IamInstanceProfile"),
    ("aws:autoscaling:launchconfiguration", "SecurityGroups"),
    ("aws:ec2:instances", "InstanceTypes"),
    ("aws:autoscaling:launchconfiguration", "DisableIMDSv1"),
}


def _check_option(namespace: str, option: str) -> None:
    allowed: set[str] | None
    if namespace.startswith("aws:elasticbeanstalk:environment:process:"):
        allowed = _PROCESS_OPTIONS
    elif namespace.startswith("aws:elbv2:listener:"):
        allowed = _LISTENER_OPTIONS
    elif namespace.startswith("aws:elbv2:listenerrule:"):
        allowed = _RULE_OPTIONS
    elif namespace in _KNOWN_NAMESPACES:
        allowed = _KNOWN_NAMESPACES[namespace]
    else:
        raise InvalidParameterValueError(
            f"Invalid option specification (Namespace: '{namespace}', OptionName: '{option}'): "
            "Unknown configuration setting."
        )
    if allowed is not None and option not in allowed:
        raise InvalidParameterValueError(
            f"Invalid option specification (Namespace: '{namespace}', OptionName: '{option}'): "
            "Unknown configuration setting."
        )


OptionKey = tuple[str, str, str]  # (resource name or "", namespace, option name)


def parse_options(settings: list[dict[str, Any]] | None) -> dict[OptionKey, str]:
    """OptionSettings of a request, checked, keyed by (resource, namespace, option)."""
    out: dict[OptionKey, str] = {}
    for item in settings or []:
        namespace, option = item.get("Namespace"), item.get("OptionName")
        if not namespace or not option:
            raise InvalidParameterValueError("Option settings need both Namespace and OptionName.")
        _check_option(namespace, option)
        out[(item.get("ResourceName") or "", namespace, option)] = "" if item.get("Value") is None else str(
            item["Value"]
        )
    return out


def check_listeners(options: dict[OptionKey, str]) -> None:
    """Refuse an HTTPS listener without a certificate, or a certificate on an HTTP one, as EB's validation does
    (ALB-LISTENER-PORT)."""
    listeners = {ns for (_, ns, _) in options if ns.startswith("aws:elbv2:listener:")}
    for ns in sorted(listeners):
        protocol = options.get(("", ns, "Protocol"), "HTTP").upper()
        certificate = options.get(("", ns, "SSLCertificateArns"), "")
        if protocol == "HTTPS" and not certificate:
            raise InvalidParameterValueError(
                f"Invalid option specification (Namespace: '{ns}', OptionName: 'SSLCertificateArns'): "
                "an HTTPS listener requires a certificate.")
        if protocol == "HTTP" and (certificate or options.get(("", ns, "SSLPolicy"))):
            raise InvalidParameterValueError(
                f"Invalid option specification (Namespace: '{ns}', OptionName: 'Protocol'): SSLCertificateArns "
                "and SSLPolicy apply to HTTPS listeners only.")
