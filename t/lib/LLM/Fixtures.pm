package LLM::Fixtures;

=head1 NAME

LLM::Fixtures - what every gateway test shares: ports, paths, the mock
provider

=head1 SYNOPSIS

    use Test::Nginx::Socket 'no_plan';
    use LLM::Fixtures;

    run_tests();

    __DATA__

    === TEST 1: a completion
    --- http_config
        llm_provider mock { url http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1; }
        llm_route m { target mock; }
    --- config
        location /v1/ {
            llm_gateway;
            include $TEST_NGINX_LLM_PARAMS;
        }

=head1 DESCRIPTION

Loading this module sets the environment variables the tests' nginx
configurations use (when they are not set already) and adds a block
preprocessor that puts the mock OpenAI provider (conf.examples/mock/openai.js
under njs) in every block's C<http_config>, listening on
C<$TEST_NGINX_MOCK_PORT>. The mock logs to logs/mock.log, so what it
receives (provider keys included) never lands in the gateway's error.log.
A block with a C<--- no_mock> section gets no mock.

It only uses Test::Nginx::Socket's public API, so it works with the real
Test::Nginx too (given the same environment).

=over

=item TEST_NGINX_MOCK_PORT (1985), TEST_NGINX_MOCK2_PORT (1986)

Where the mock listens; the second port is free for tests' own servers.

=item TEST_NGINX_DEAD_PORT (1989)

A port nothing listens on: connections are refused.

=item TEST_NGINX_LLM_PARAMS, TEST_NGINX_LLM_LOG_FORMAT, TEST_NGINX_MOCK_DIR

The shipped llm_proxy_params and llm_log_format snippets and the mock's
directory.

=item TEST_NGINX_FIXTURE_DIR

Recorded-shape provider responses (t/fixtures), served by the fixture
mock.

=back

The mock server also has the other providers' mocks, by path prefix:
C</anthropic/v1> (anthropic.js), C</gemini/v1beta> (gemini.js),
C</bedrock> (bedrock.js: C</bedrock/model/ID/converse>) and
C</fixture/fixture=DIALECT:NAME,split=N/v1> (fixture.js: a file of
t/fixtures in two pieces).

=over

=back

=cut

use strict;
use warnings;

use Cwd qw(abs_path);
use File::Basename qw(dirname);
use Test::Nginx::Socket ();

my $top = abs_path(dirname(__FILE__) . '/../../..');

$ENV{TEST_NGINX_MOCK_PORT}  //= 1985;
$ENV{TEST_NGINX_MOCK2_PORT} //= 1986;
$ENV{TEST_NGINX_DEAD_PORT}  //= 1989;
$ENV{TEST_NGINX_LLM_PARAMS} //= "$top/conf.examples/llm_proxy_params";
$ENV{TEST_NGINX_LLM_LOG_FORMAT} //= "$top/conf.examples/llm_log_format";
$ENV{TEST_NGINX_MOCK_DIR}   //= "$top/conf.examples/mock";
$ENV{TEST_NGINX_FIXTURE_DIR} //= "$top/t/fixtures";

# the usual gateway location, for LLM::Fixtures::defaults(config => ...)
our $GATEWAY_CONFIG = <<'CONF';
    location /v1/ {
        llm_gateway;
        include $TEST_NGINX_LLM_PARAMS;
    }
CONF

# the same, with the access log in a log_format "usage" the test declares
our $USAGE_CONFIG = <<'CONF';
    location /v1/ {
        access_log logs/access.log usage;
        llm_gateway;
        include $TEST_NGINX_LLM_PARAMS;
    }
CONF

# what the mock reports of the body it received (the "body_sha256" of the
# "mock" member of its answer), for a response_body_like pattern: the body
# the provider got, byte for byte
sub body_digest_re {
    my ($body) = @_;
    require Digest::SHA;
    return qr/"body_sha256":"${\ Digest::SHA::sha256_hex($body)}"/;
}

our $MOCK_HTTP_CONFIG = <<'CONF';
    js_path "$TEST_NGINX_MOCK_DIR";
    js_import openai.js;
    js_import anthropic.js;
    js_import gemini.js;
    js_import bedrock.js;
    js_import fixture.js;

    server {
        listen 127.0.0.1:$TEST_NGINX_MOCK_PORT;
        error_log logs/mock.log info;
        access_log logs/mock_access.log;

        location / {
            set $mock_state_dir $TEST_NGINX_SERVER_ROOT;
            postpone_output 0;
            client_body_buffer_size 16m;
            client_max_body_size 64m;
            js_content openai.chat;
        }

        location /anthropic/ {
            postpone_output 0;
            client_body_buffer_size 16m;
            client_max_body_size 64m;
            js_content anthropic.messages;
        }

        location /gemini/ {
            postpone_output 0;
            client_body_buffer_size 16m;
            client_max_body_size 64m;
            js_content gemini.generate;
        }

        location /bedrock/ {
            postpone_output 0;
            client_body_buffer_size 16m;
            client_max_body_size 64m;
            js_content bedrock.converse;
        }

        location /fixture/ {
            set $mock_fixture_dir $TEST_NGINX_FIXTURE_DIR;
            postpone_output 0;
            client_body_buffer_size 16m;
            client_max_body_size 64m;
            js_content fixture.serve;
        }
    }

CONF

my %Defaults;

=head2 defaults(section => text, ...)

Sections a block gets when it has none of its own (before the mock is
added to http_config): a test file's common gateway configuration.

=cut

=head2 chunked(body [, size])

The body in HTTP/1.1 chunked encoding, pieces of C<size> bytes (1000),
the last chunk included. For C<--- request eval> with
C<Transfer-Encoding: chunked> in more_headers: the real Test::Nginx
sends such a body as it is (ours would encode a plain one itself).

=cut

sub chunked {
    my ($body, $size) = @_;
    my $out = '';
    $size ||= 1000;
    for (my $i = 0; $i < length $body; $i += $size) {
        my $piece = substr($body, $i, $size);
        $out .= sprintf("%x\r\n", length $piece) . $piece . "\r\n";
    }
    return $out . "0\r\n\r\n";
}


sub defaults {
    %Defaults = @_;
}

# a block's section, or undef (Test::Base makes accessors only for the
# sections some block of the file has)
sub section {
    my ($block, $name) = @_;
    return $block->can($name) ? scalar $block->$name : undef;
}

Test::Nginx::Socket::add_block_preprocessor(sub {
    my $block = shift;

    for my $name (sort keys %Defaults) {
        if (!defined section($block, $name)) {
            $block->set_value($name => $Defaults{$name});
        }
    }

    return if defined section($block, 'no_mock')
              || defined section($block, 'must_die');

    my $http = section($block, 'http_config') // '';
    $block->set_value(http_config => $MOCK_HTTP_CONFIG . $http);
});

1;
