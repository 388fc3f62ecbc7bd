use serde::{Deserialize, Serialize};
use std::fmt;

/// The group-chat platforms gitee-relay can post to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PlatformKind {
    #[serde(alias = "ding", alias = "dingding")]
    Dingtalk,
    #[serde(alias = "wechat_work", alias = "wework", alias = "wxwork")]
    Wecom,
    #[serde(alias = "lark")]
    Feishu,
    Slack,
}

impl PlatformKind {
    pub const ALL: [PlatformKind; 4] = [
        PlatformKind::Dingtalk,
        PlatformKind::Wecom,
        PlatformKind::Feishu,
        PlatformKind::Slack,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            PlatformKind::Dingtalk => "dingtalk",
            PlatformKind::Wecom => "wecom",
            PlatformKind::Feishu => "feishu",
            PlatformKind::Slack => "slack",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        match name.to_ascii_lowercase().as_str() {
            "dingtalk" | "ding" | "dingding" => Some(PlatformKind::Dingtalk),
            "wecom" | "wechat_work" | "wework" | "wxwork" => Some(PlatformKind::Wecom),
            "feishu" | "lark" => Some(PlatformKind::Feishu),
            "slack" => Some(PlatformKind::Slack),
            _ => None,
        }
    }
}

impl fmt::Display for PlatformKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
