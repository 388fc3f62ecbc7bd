/// A robot URL safe to log or show: every query value and any token-like last path segment
/// is replaced by `***`. DingTalk and WeCom carry their token in the query, Feishu and Slack
/// in the path.
pub fn mask_url(raw: &str) -> String {
    let Ok(mut url) = url::Url::parse(raw) else {
        return "<invalid url>".to_owned();
    };
    let _ = url.set_password(None).map(|_| url.set_username(""));
    let pairs: Vec<(String, String)> = url
        .query_pairs()
        .map(|(k, _)| (k.into_owned(), "***".to_owned()))
        .collect();
    if pairs.is_empty() {
        url.set_query(None);
    } else {
        url.query_pairs_mut().clear().extend_pairs(pairs);
    }
    let segments: Option<Vec<String>> = url.path_segments().map(|s| s.map(str::to_owned).collect());
    if let Some(mut segments) = segments {
        // Slack: /services/T…/B…/secret; Feishu: /open-apis/bot/v2/hook/<id>.
        let token_like = |s: &str| s.len() >= 8;
        let n = segments.len();
        for (i, seg) in segments.iter_mut().enumerate() {
            let is_last = i + 1 == n;
            let in_slack_services = i > 0 && n >= 4 && i >= n - 3 && raw.contains("/services/");
            if (is_last || in_slack_services) && token_like(seg) {
                *seg = "***".to_owned();
            }
        }
        url.set_path(&segments.join("/"));
    }
    url.to_string().replace("%2A%2A%2A", "***")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_tokens_of_every_platform() {
        let d = mask_url(
            "https://oapi.dingtalk.com/robot/send?access_token=abcdef123456&timestamp=1&sign=x%2B",
        );
        assert_eq!(
            d,
            "https://oapi.dingtalk.com/robot/send?access_token=***&timestamp=***&sign=***"
        );
        let w = mask_url("https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=693a91f6-7xxx");
        assert!(!w.contains("693a91f6"), "{w}");
        let f = mask_url("https://open.feishu.cn/open-apis/bot/v2/hook/0a1b2c3d-4e5f");
        assert_eq!(f, "https://open.feishu.cn/open-apis/bot/v2/hook/***");
        let s = mask_url(
            "https://hooks.slack.com/services/T0000ABCD/B0000EFGH/XXXXXXXXXXXXXXXXXXXXXXXX",
        );
        assert!(!s.contains("XXXXXXXX"), "{s}");
        assert!(!s.contains("T0000ABCD"), "{s}");
        assert_eq!(mask_url("::nope"), "<invalid url>");
        assert!(!mask_url("https://user:pw@host/x").contains("pw"));
    }
}
